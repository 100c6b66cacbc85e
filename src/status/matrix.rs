//! The readiness matrix: plans by checks (data and lag, capacity, traffic,
//! the standbys' own checks, evidence, verified), each cell ok, unknown or
//! failing with why, as a table and as one self-contained HTML page
//! (`drctl status --html FILE`).
//!
//! Why a matrix: on-call reads "which plan, which check" before anything
//! else during an outage, and an auditor reads it across the estate; the
//! text report lists regions one by one. Each cell is judged from the
//! [`StatusReport`] alone (pure), so the page, the JSON and the text agree;
//! a check a plan has nothing for is said so (`none`), never ok.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{PlanStatus, RegionStatus, StatusReport};
use crate::report::render::x;

/// What one check came to for one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// The plan has nothing this check reads.
    None,
    /// It holds.
    Ok,
    /// It could not be judged (a read that failed, a lag with no datapoint).
    Unknown,
    /// It does not hold.
    Fail,
}

impl Mark {
    /// Its word on the page.
    pub fn word(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Ok => "ok",
            Self::Unknown => "unknown",
            Self::Fail => "FAIL",
        }
    }
}

/// One cell: a check of a plan, and why when it is not ok.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The check.
    pub check: &'static str,
    /// What it came to.
    pub mark: Mark,
    /// Why, when it is not ok.
    pub why: Vec<String>,
}

/// One plan's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The plan.
    pub plan: String,
    /// Where it serves now.
    pub active: String,
    /// Whether a standby could take over now.
    pub ready: bool,
    /// Its cells, in [`CHECKS`] order.
    pub cells: Vec<Cell>,
}

/// The checks, in column order.
pub const CHECKS: [&str; 6] = [
    "data and lag",
    "capacity",
    "traffic",
    "standby checks",
    "evidence",
    "verified",
];

/// Folds marks into a cell: the worst wins; no mark at all is `none`.
fn cell(check: &'static str, marks: Vec<(Mark, Option<String>)>) -> Cell {
    let mark = marks.iter().map(|(m, _)| *m).max().unwrap_or(Mark::None);
    let why = marks.into_iter().filter_map(|(_, w)| w).collect();
    Cell { check, mark, why }
}

fn standbys(p: &PlanStatus) -> impl Iterator<Item = &RegionStatus> {
    p.regions.iter().filter(|r| r.role != "active")
}

fn data(p: &PlanStatus) -> Cell {
    let marks = standbys(p)
        .flat_map(|r| r.databases.iter().map(move |d| (r, d)))
        .map(|(r, d)| match (d.role.as_str(), d.within_rpo) {
            ("replica", Some(true)) => (Mark::Ok, None),
            ("replica", Some(false)) => (
                Mark::Fail,
                Some(format!("{} in {}: lag above the RPO", d.instance, r.region)),
            ),
            ("replica", None) => (
                Mark::Unknown,
                Some(format!("{} in {}: lag unknown", d.instance, r.region)),
            ),
            ("unreachable" | "unknown", _) => (
                Mark::Unknown,
                Some(format!("{} in {}: {}", d.instance, r.region, d.role)),
            ),
            (role, _) => (
                Mark::Fail,
                Some(format!(
                    "{} in {}: {role}, not a replica",
                    d.instance, r.region
                )),
            ),
        })
        .collect();
    cell("data and lag", marks)
}

fn capacity(p: &PlanStatus) -> Cell {
    let marks = standbys(p)
        .flat_map(|r| r.compute.iter().map(move |c| (r, c)))
        .map(
            |(r, c)| match (c.exists, r.unreachable.is_some(), c.problems.first()) {
                (_, true, _) => (
                    Mark::Unknown,
                    Some(format!(
                        "{} in {}: the region does not answer",
                        c.group, r.region
                    )),
                ),
                (false, false, _) => (
                    Mark::Fail,
                    Some(format!("{} in {}: does not exist", c.group, r.region)),
                ),
                (true, false, Some(w)) => (Mark::Fail, Some((*w).clone())),
                (true, false, None) => (Mark::Ok, None),
            },
        )
        .collect();
    cell("capacity", marks)
}

fn traffic(p: &PlanStatus) -> Cell {
    let marks = (p.dns.iter())
        .map(|d| match &d.points_to {
            Some(r) if *r == p.active_region => (Mark::Ok, None),
            Some(r) => (
                Mark::Fail,
                Some(format!("{} points to {r}, not {}", d.name, p.active_region)),
            ),
            None => (
                Mark::Unknown,
                Some(format!("{}: no region matches its values", d.name)),
            ),
        })
        .collect();
    cell("traffic", marks)
}

fn checks(p: &PlanStatus) -> Cell {
    let marks = standbys(p)
        .flat_map(|r| r.checks.iter())
        .map(|f| match &f.problem {
            None => (Mark::Ok, None),
            Some(why) => (
                Mark::Fail,
                Some(format!("{} in {}: {why}", f.resource, f.region)),
            ),
        })
        .collect();
    cell("standby checks", marks)
}

fn evidence(p: &PlanStatus) -> Cell {
    let marks = (p.evidence.iter())
        .map(|e| match (e.reachable, &e.error) {
            (Some(true), _) => (Mark::Ok, None),
            (Some(false), _) => (Mark::Fail, Some(format!("{}: missing", e.destination))),
            (None, err) => (
                Mark::Unknown,
                Some(format!(
                    "{}: {}",
                    e.destination,
                    err.as_deref().unwrap_or("not read")
                )),
            ),
        })
        .collect();
    cell("evidence", marks)
}

fn verified(p: &PlanStatus) -> Cell {
    let mark = match &p.verified {
        None => (Mark::Unknown, Some("the drill history was not read".into())),
        Some(v) if v.verified => (Mark::Ok, None),
        Some(v) => (Mark::Fail, v.reason.clone()),
    };
    cell("verified", vec![mark])
}

/// Each plan's row of the matrix (pure).
pub fn rows(report: &StatusReport) -> Vec<Row> {
    (report.plans.iter())
        .map(|p| Row {
            plan: p.plan.clone(),
            active: p.active_region.clone(),
            ready: p.ready,
            cells: vec![
                data(p),
                capacity(p),
                traffic(p),
                checks(p),
                evidence(p),
                verified(p),
            ],
        })
        .collect()
}

const STYLE: &str = r#"
body { margin: 0; color: #1b1f24; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; }
p.meta { color: #57606a; margin: 0 0 14px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 6px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; }
td.mark { font-weight: 700; }
td.mark .why { display: block; font-weight: 400; font-size: 12px; color: #57606a; }
td.ok { color: #1a7f37; background: #dafbe1; }
td.fail { color: #b3261e; background: #ffebe9; }
td.unknown { color: #7d4e00; background: #fff8c5; }
td.none { color: #57606a; }
@media print { * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"#;

/// The matrix as one self-contained page (no script, nothing fetched):
/// a row per plan, a column per check, each cell its word and why.
pub fn html(report: &StatusReport, at: DateTime<Utc>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Readiness, {0}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>Readiness, {0}</h1>",
        x(&at.format("%Y-%m-%d %H:%M:%SZ").to_string())
    );
    let _ = writeln!(
        o,
        r#"<p class="meta">Read from the clouds and the drill history by <code>drctl status</code>: each plan by each check, ok, unknown (could not be judged) or FAIL with why; none: the plan has nothing the check reads.</p>"#
    );
    let _ = write!(
        o,
        r#"<table class="matrix"><thead><tr><th>Plan</th><th>Serves from</th><th>Ready</th>"#
    );
    for c in CHECKS {
        let _ = write!(o, "<th>{c}</th>");
    }
    let _ = writeln!(o, "</tr></thead><tbody>");
    for r in rows(report) {
        let _ = write!(
            o,
            r#"<tr data-plan="{0}"><th>{0}</th><td>{1}</td><td class="mark {2}" data-check="ready" data-mark="{2}">{3}</td>"#,
            x(&r.plan),
            x(&r.active),
            if r.ready { "ok" } else { "fail" },
            if r.ready { "READY" } else { "NOT READY" }
        );
        for c in &r.cells {
            let class = match c.mark {
                Mark::Fail => "fail",
                m => m.word(),
            };
            let why: String = (c.why.iter().take(4))
                .map(|w| format!(r#"<span class="why">{}</span>"#, x(w)))
                .collect();
            let _ = write!(
                o,
                r#"<td class="mark {class}" data-check="{}" data-mark="{}">{}{why}</td>"#,
                c.check,
                class,
                c.mark.word()
            );
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</tbody></table>\n</main>\n</body>\n</html>");
    o
}

#[cfg(test)]
mod tests;
