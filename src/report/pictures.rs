//! The HTML report's pictures beyond each run's timeline: per run, the
//! waterfall of its RTO (detect, decide, act, converge) against the
//! tier's target; per plan, small multiples of the RTO and RPO achieved
//! over its runs against their targets; for the report, a drill calendar
//! (plans by weeks) and where each plan's writer and traffic were before
//! and after the window (each region and its cloud).
//!
//! Why these two: an auditor asks "is recovery getting slower, and was
//! every drill done on time?", and a table of runs answers it only to a
//! reader who compares rows by hand. The pictures answer it at a glance
//! and say the same in words (each point and cell has its figure or word
//! as text, and a title on hover), so a greyscale print loses nothing.
//!
//! As the rest of the page: pure functions of the [`Report`], inline SVG
//! and HTML, no script, no fetch; an unknown figure is drawn as unknown
//! (a hollow mark on the axis's "unknown" band), never as zero.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, Utc};

use super::render::{achieved, day, target, verdict_word, x};
use super::{PlanSection, Report, RunRow};
use crate::journal::event::RunKind;
use crate::runs::drill::Verdict;
use crate::runs::measure::Measure;
use crate::runs::watch::{Phase, operator_phases};

/// The pictures' part of the page's style sheet (the page's colours).
pub const STYLE: &str = r#"
figure.trends { display: flex; flex-wrap: wrap; gap: 8px 18px; margin: 8px 0 4px; }
figure.trends figcaption { flex-basis: 100%; color: var(--muted); font-size: 12px; }
svg.trend .axis { stroke: var(--muted); }
svg.trend .goal { stroke: var(--fail); stroke-dasharray: 5 3; }
svg.trend text.trend-title { font-weight: 600; }
svg.trend .point.met { fill: var(--pass); }
svg.trend .point.missed { fill: var(--fail); }
svg.trend .point.unknown { fill: #fff; stroke: var(--unknown); stroke-width: 2; }
table.calendar { width: auto; }
table.calendar th.week { font-size: 10px; font-weight: 400; writing-mode: vertical-rl; padding: 4px 2px; }
table.calendar td.cell { width: 22px; text-align: center; font-weight: 700; padding: 2px; }
td.cell.passed { color: var(--pass); background: var(--pass-bg); }
td.cell.failed, td.cell.missed { color: var(--fail); background: var(--fail-bg); }
td.cell.refused { color: var(--unknown); background: var(--unknown-bg); }
td.cell.not-due { color: var(--muted); }
figure.waterfall { margin: 4px 0 2px; }
figure.waterfall figcaption { color: var(--muted); font-size: 12px; }
svg.waterfall .phase.known.detect { fill: #8250df; }
svg.waterfall .phase.known.decide { fill: #bf8700; }
svg.waterfall .phase.known.act { fill: #0b57d0; }
svg.waterfall .phase.known.converge { fill: #1a7f37; }
svg.waterfall .phase.unknown { fill: #fff; stroke: var(--unknown); stroke-width: 2; stroke-dasharray: 4 2; }
svg.waterfall .goal { stroke: var(--fail); stroke-width: 2; stroke-dasharray: 5 3; }
svg.placement rect { fill: #fff; stroke: var(--rule); stroke-width: 1.5; }
svg.placement g.after rect { stroke: var(--accent); stroke-width: 2.5; }
svg.placement .mark.before { fill: #fff; stroke: var(--muted); stroke-width: 2.5; }
svg.placement .mark.after { fill: var(--accent); }
"#;

/// The most weeks the calendar shows (the last ones of the window).
pub const CALENDAR_WEEKS: usize = 26;

/// The most runs a small multiple shows (the last ones of the window).
pub const TREND_RUNS: usize = 40;

/// One figure of one run for a small multiple.
struct Point<'a> {
    run: &'a RunRow,
    seconds: Option<f64>,
    met: Option<bool>,
}

/// A chart's size and margins.
const W: f64 = 420.0;
const H: f64 = 150.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 22.0;
/// The band at the top where unknown figures are drawn.
const UNKNOWN_BAND: f64 = 16.0;
const BOTTOM: f64 = 26.0;

/// The change of the last measured figure from the one before it, in
/// words (`+12.0s`, `-3.5s`; `None` with fewer than two measured).
fn change(points: &[Point<'_>]) -> Option<String> {
    let mut known = points.iter().rev().filter_map(|p| p.seconds);
    let (last, before) = (known.next()?, known.next()?);
    let d = last - before;
    Some(format!(
        "{}{:.1}s",
        if d >= 0.0 { "+" } else { "-" },
        d.abs()
    ))
}

/// One small multiple: `what` (RTO or RPO) of `points` against `goal`.
fn multiple(o: &mut String, plan: &str, what: &str, goal: u64, points: &[Point<'_>]) {
    let top = (points.iter().filter_map(|p| p.seconds))
        .fold(goal as f64, f64::max)
        .max(1.0)
        * 1.1;
    let plot = (TOP + UNKNOWN_BAND, H - BOTTOM);
    let y = |s: f64| plot.1 - (s / top) * (plot.1 - plot.0);
    let n = points.len().max(1) as f64;
    let step = (W - LEFT - RIGHT) / n;
    let cx = |i: usize| LEFT + step * (i as f64 + 0.5);
    let last = points.iter().rev().find_map(|p| p.seconds);
    let _ = writeln!(
        o,
        r#"<svg class="trend" data-plan="{}" data-what="{what}" data-target="{goal}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{what} of plan {} over its last {} runs against the target {}">"#,
        x(plan),
        x(plan),
        points.len(),
        x(&target(goal))
    );
    let _ = writeln!(
        o,
        r#"<text class="trend-title" x="{LEFT}" y="14">{what}: last {}{}</text>"#,
        x(&achieved(last)),
        change(points)
            .map(|c| format!(", {c} from the one before"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        r#"<line class="axis" x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}"/><text class="tick" x="{lx}" y="{ty}" text-anchor="end">0</text><text class="tick" x="{lx}" y="{uy}" text-anchor="end">unknown</text>"#,
        b = plot.1,
        r = W - RIGHT,
        lx = LEFT - 4.0,
        ty = plot.1 + 4.0,
        uy = TOP + UNKNOWN_BAND / 2.0 + 4.0,
    );
    let gy = y(goal as f64);
    let _ = writeln!(
        o,
        r#"<line class="goal" x1="{LEFT}" y1="{gy:.1}" x2="{r}" y2="{gy:.1}"><title>target {t}</title></line><text class="tick" x="{lx}" y="{ty:.1}" text-anchor="end">{t}</text>"#,
        r = W - RIGHT,
        t = x(&target(goal)),
        lx = LEFT - 4.0,
        ty = gy + 4.0,
    );
    for (i, p) in points.iter().enumerate() {
        let (class, cy) = match (p.seconds, p.met) {
            (None, _) => ("point unknown", TOP + UNKNOWN_BAND / 2.0),
            (Some(s), Some(false)) => ("point missed", y(s)),
            (Some(s), _) => ("point met", y(s)),
        };
        let said = match (p.seconds, p.met) {
            (None, _) => "unknown".to_string(),
            (Some(_), Some(false)) => format!("{} MISSED", achieved(p.seconds)),
            (Some(_), _) => achieved(p.seconds),
        };
        let _ = writeln!(
            o,
            r#"<circle class="{class}" data-run="{id}" data-seconds="{secs}" cx="{c:.1}" cy="{cy:.1}" r="4"><title>{id} ({when}): {what} {said}</title></circle>"#,
            id = x(&p.run.run_id),
            secs = p.seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            c = cx(i),
            when = x(&day(p.run.started)),
        );
    }
    let _ = writeln!(
        o,
        r#"<text class="tick" x="{LEFT}" y="{H}" dy="-6">{} runs, oldest left</text></svg>"#,
        points.len()
    );
}

/// A plan's small multiples: its RTO and RPO achieved over its last runs
/// (at most [`TREND_RUNS`]), each against its target.
pub fn trends(o: &mut String, p: &PlanSection) {
    let runs: Vec<&RunRow> = (p.runs.iter())
        .filter(|r| !matches!(r.verdict, Verdict::Refused(_)) && r.chain.ok)
        .collect();
    if runs.is_empty() {
        return;
    }
    let runs = &runs[runs.len().saturating_sub(TREND_RUNS)..];
    let of = |m: fn(&RunRow) -> &Measure| -> Vec<Point<'_>> {
        (runs.iter())
            .map(|r| Point {
                run: r,
                seconds: m(r).seconds,
                met: m(r).met,
            })
            .collect()
    };
    let _ = writeln!(
        o,
        r#"<figure class="trends" data-plan="{}"><figcaption>RTO and RPO achieved by the plan's runs and drills, against the tier's targets (a hollow mark on the top band: not measured)</figcaption>"#,
        x(&p.plan)
    );
    multiple(o, &p.plan, "RTO", p.rto_target_seconds, &of(|r| &r.rto));
    multiple(o, &p.plan, "RPO", p.rpo_target_seconds, &of(|r| &r.rpo));
    let _ = writeln!(o, "</figure>");
}

/// The phases of a run's RTO (pure): a watched run's four, measured from
/// the first failed observation; an operator's run's `decide` (from the
/// declared disaster, when declared), `act` and `converge`.
pub fn phases(run: &RunRow) -> Vec<Phase> {
    if let Some(w) = &run.watch {
        return w.phases.clone();
    }
    let clock = run.declared_at.unwrap_or(run.started);
    let restored = (run.rto.seconds)
        .and_then(|s| chrono::Duration::try_milliseconds((s * 1000.0) as i64))
        .map(|d| clock + d);
    operator_phases(run.declared_at, run.started, &run.steps, restored)
}

/// The width an unknown phase is drawn at (it has no length to draw).
const UNKNOWN_WIDTH: f64 = 70.0;

/// A run's RTO as a waterfall: each phase a bar after the one before,
/// with its length, against the tier's RTO target (dashed); an unknown
/// phase is a hollow bar of its own, said unknown, never zero.
pub fn waterfall(o: &mut String, p: &PlanSection, run: &RunRow) {
    if matches!(run.verdict, Verdict::Refused(_)) || run.steps.is_empty() {
        return;
    }
    let phases = phases(run);
    let known: f64 = phases.iter().filter_map(|p| p.seconds).sum();
    let unknown = phases.iter().filter(|p| p.seconds.is_none()).count() as f64;
    let (w, h, left, right) = (720.0, 70.0, 10.0, 10.0);
    let goal = p.rto_target_seconds as f64;
    let span = known.max(goal).max(1.0) * 1.06;
    let room = w - left - right - unknown * UNKNOWN_WIDTH;
    let scale = room / span;
    let _ = writeln!(
        o,
        r#"<figure class="waterfall"><svg class="waterfall" data-run="{id}" data-plan="{plan}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="RTO of run {id}, phase by phase, against the target {t}">"#,
        id = x(&run.run_id),
        plan = x(&p.plan),
        t = x(&target(p.rto_target_seconds)),
    );
    let mut at = left;
    // Labels alternate between two lines, so narrow phases' do not overlap.
    for (i, ph) in phases.iter().enumerate() {
        let (width, class) = match ph.seconds {
            Some(s) => ((s * scale).max(1.5), "phase known"),
            None => (UNKNOWN_WIDTH, "phase unknown"),
        };
        let said = format!("{} {}", ph.name, achieved(ph.seconds));
        let _ = writeln!(
            o,
            r#"<rect class="{class} {name}" data-phase="{name}" data-seconds="{secs}" x="{at:.1}" y="16" width="{width:.1}" height="20"><title>{said}: {basis}</title></rect><text class="tick" x="{at:.1}" y="{ly}">{said}</text>"#,
            ly = if i % 2 == 0 { 50 } else { 64 },
            name = ph.name,
            secs = ph.seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            said = x(&said),
            basis = x(&ph.basis),
        );
        at += width;
    }
    let gx = left + goal * scale;
    let _ = writeln!(
        o,
        r#"<line class="goal" x1="{gx:.1}" y1="12" x2="{gx:.1}" y2="40"><title>RTO target {t}</title></line><text class="tick" x="{gx:.1}" y="10" text-anchor="middle">target {t}</text></svg>"#,
        t = x(&target(p.rto_target_seconds)),
    );
    let _ = writeln!(
        o,
        "<figcaption>RTO phase by phase: {}; the dashed line is the target.{}</figcaption></figure>",
        x(&(phases.iter())
            .map(|p| format!("{} {}", p.name, achieved(p.seconds)))
            .collect::<Vec<_>>()
            .join(", ")),
        if run.chain.ok {
            ""
        } else {
            " Not trusted: the journal does not verify, so these are what the altered journal says."
        }
    );
}

/// The cloud a region belongs to, by its name (`us-east4` is GCP's).
fn cloud_of(region: &str) -> &'static str {
    if crate::plan::sites::gcp_region(region) {
        "GCP"
    } else {
        "AWS"
    }
}

/// Before and after: per plan, its regions as boxes (with their cloud),
/// where its writer and traffic were when the window began (a ring) and
/// when it ended (a filled mark), and the runs that moved it.
pub fn placement(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        r#"<section id="placement"><h2>Where each plan serves</h2><p class="meta">Each plan's regions, home first. A ring: where its writer and traffic were when the window began; a filled mark: where they were when it ended (the target of the last failover or failback that succeeded, from journals that verify; else home).</p><table class="placement"><thead><tr><th>Plan</th><th>Regions</th><th>Before → after</th><th>Moved by</th></tr></thead><tbody>"#
    );
    for p in &r.plans {
        let pl = &p.placement;
        let (bw, gap) = (118.0, 10.0);
        let w = p.regions.len() as f64 * (bw + gap);
        let _ = write!(
            o,
            r#"<tr data-plan="{plan}"><th>{plan}</th><td><svg class="placement" data-plan="{plan}" data-before="{b}" data-after="{a}" viewBox="0 0 {w} 44" width="{w}" height="44" role="img" aria-label="plan {plan}: before {b}, after {a}">"#,
            plan = x(&p.plan),
            b = x(&pl.before),
            a = x(&pl.after),
        );
        for (i, region) in p.regions.iter().enumerate() {
            let bx = i as f64 * (bw + gap);
            let mut class = String::from("region");
            for (held, word) in [(&pl.before, " before"), (&pl.after, " after")] {
                if held == region {
                    class.push_str(word);
                }
            }
            let _ = write!(
                o,
                r#"<g class="{class}" data-region="{reg}"><rect x="{bx}" y="2" width="{bw}" height="40" rx="4"/><text x="{tx}" y="19">{reg}</text><text class="tick" x="{tx}" y="34">{cloud}{home}</text>"#,
                reg = x(region),
                tx = bx + 8.0,
                cloud = cloud_of(region),
                home = if i == 0 { ", home" } else { "" },
            );
            if *region == pl.before {
                let _ = write!(
                    o,
                    r#"<circle class="mark before" cx="{cx}" cy="14" r="6"><title>writer and traffic when the window began</title></circle>"#,
                    cx = bx + bw - 28.0
                );
            }
            if *region == pl.after {
                let _ = write!(
                    o,
                    r#"<circle class="mark after" cx="{cx}" cy="14" r="6"><title>writer and traffic when the window ended</title></circle>"#,
                    cx = bx + bw - 12.0
                );
            }
            let _ = write!(o, "</g>");
        }
        let moved: Vec<String> = (pl.moves.iter())
            .map(|m| format!("{} {} to {}", m.run_id, m.kind, m.to))
            .collect();
        let _ = writeln!(
            o,
            "</svg></td><td>{} ({}) → {} ({})</td><td>{}</td></tr>",
            x(&pl.before),
            cloud_of(&pl.before),
            x(&pl.after),
            cloud_of(&pl.after),
            if moved.is_empty() {
                "not moved in the window".to_string()
            } else {
                x(&moved.join("; "))
            }
        );
    }
    let _ = writeln!(o, "</tbody></table></section>");
}

/// What a week of a plan's drills came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// A drill passed.
    Passed,
    /// Drills ran, and none passed.
    Failed,
    /// A slot was recorded missed, or a drill was due and none ran.
    Missed,
    /// Drills were refused (a gate, a blackout skip) and none ran.
    Refused,
    /// No drill, and none was due (the last pass is within the interval).
    NotDue,
    /// No drill, and no drill of the plan on record before it to judge by.
    NoRecord,
}

impl Cell {
    /// Its word, and its class on the page.
    pub fn word(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Missed => "missed",
            Self::Refused => "refused",
            Self::NotDue => "not due",
            Self::NoRecord => "no record",
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Self::Passed => "P",
            Self::Failed => "F",
            Self::Missed => "M",
            Self::Refused => "R",
            Self::NotDue => "·",
            Self::NoRecord => "",
        }
    }
}

/// The Monday (00:00 UTC) of the week of `t`.
fn monday(t: DateTime<Utc>) -> DateTime<Utc> {
    let d = t.date_naive() - Duration::days(i64::from(t.weekday().num_days_from_monday()));
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// The weeks of the window, Monday to Monday, the last
/// [`CALENDAR_WEEKS`] of them (pure).
pub fn weeks(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut w = monday(from);
    while w <= to {
        out.push(w);
        w += Duration::weeks(1);
    }
    out.split_off(out.len().saturating_sub(CALENDAR_WEEKS))
}

/// What the week from `start` came to, up to `now` (a week not over yet
/// is judged up to it), for drills `drills` of a plan whose passing
/// drills are due every `interval` seconds (pure).
pub fn cell(drills: &[&RunRow], start: DateTime<Utc>, now: DateTime<Utc>, interval: u64) -> Cell {
    let end = (start + Duration::weeks(1)).min(now);
    let here: Vec<&&RunRow> = (drills.iter())
        .filter(|r| r.started >= start && r.started < end)
        .collect();
    let missed = |r: &RunRow| matches!(&r.verdict, Verdict::Refused(w) if w.contains("missed"));
    if here.iter().any(|r| r.verdict.passed()) {
        return Cell::Passed;
    }
    if here.iter().any(|r| missed(r)) {
        return Cell::Missed;
    }
    if here
        .iter()
        .any(|r| !matches!(r.verdict, Verdict::Refused(_)))
    {
        return Cell::Failed;
    }
    if !here.is_empty() {
        return Cell::Refused;
    }
    if !drills.iter().any(|r| r.started < start) {
        return Cell::NoRecord;
    }
    let last_pass = (drills.iter())
        .filter(|r| r.started < end && r.verdict.passed())
        .map(|r| r.started)
        .max();
    let interval = Duration::seconds(i64::try_from(interval).unwrap_or(i64::MAX / 1000));
    match last_pass {
        Some(t) if t + interval >= end => Cell::NotDue,
        _ => Cell::Missed,
    }
}

/// The drills the calendar counts for plan section `p`: those whose
/// journal verifies. One that does not is no drill here (a forged UNKNOWN
/// one would turn a week F); the findings name it.
pub fn calendar_drills(p: &PlanSection) -> Vec<&RunRow> {
    (p.runs.iter())
        .filter(|r| r.kind == RunKind::Drill && r.chain.ok)
        .collect()
}

/// The drill calendar: plans by weeks, each cell what the week's drills
/// came to (its letter, its word on hover and in the legend).
pub fn calendar(o: &mut String, r: &Report) {
    let weeks = weeks(r.window.from, r.window.to);
    let _ = writeln!(
        o,
        r#"<section id="calendar"><h2>Drill calendar</h2><p class="meta">Plans by week (Monday to Sunday, UTC), the last {} weeks of the window. P passed, F failed, M missed, R refused, a dot: not due, blank: no drill on record before it.</p>"#,
        weeks.len()
    );
    let _ = writeln!(o, r#"<table class="calendar"><thead><tr><th>Plan</th>"#);
    for w in &weeks {
        let _ = write!(
            o,
            r#"<th class="week" title="week of {0}">{1}</th>"#,
            day(*w),
            w.format("%m-%d")
        );
    }
    let _ = writeln!(o, "</tr></thead><tbody>");
    for p in &r.plans {
        let drills = calendar_drills(p);
        let _ = write!(o, r#"<tr data-plan="{0}"><th>{0}</th>"#, x(&p.plan));
        for w in &weeks {
            let c = cell(&drills, *w, r.window.to, p.cadence.interval_seconds);
            let runs: Vec<String> = (drills.iter())
                .filter(|r| r.started >= *w && r.started < *w + Duration::weeks(1))
                .map(|r| format!("{} {}", r.run_id, verdict_word(&r.verdict)))
                .collect();
            let _ = write!(
                o,
                r#"<td class="cell {cls}" data-week="{wk}" data-cell="{word}" title="{plan}, week of {wk}: {word}{runs}">{letter}</td>"#,
                cls = c.word().replace(' ', "-"),
                wk = day(*w),
                word = c.word(),
                plan = x(&p.plan),
                runs = if runs.is_empty() {
                    String::new()
                } else {
                    x(&format!(" ({})", runs.join(", ")))
                },
                letter = c.letter(),
            );
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</tbody></table></section>");
}
