//! The readiness matrix: plans by checks (data and lag, capacity, traffic,
//! the standbys' own checks, evidence, verified), each cell ok, unknown or
//! failing with why, as a table and as one self-contained HTML page
//! (`drctl status --html FILE`, and the report's dashboard, which draws it
//! with [`crate::report::readiness`]).
//!
//! Why a matrix: on-call reads "which plan, which check" before anything
//! else during an outage, and an auditor reads it across the estate; the
//! text report lists regions one by one. Each cell is judged from the
//! [`StatusReport`] alone (pure), so the page, the JSON and the text agree;
//! a check a plan has nothing for is said so (`none`), never ok.

use std::fmt::Write as _;

use super::{PlanStatus, RegionStatus, StatusReport};
use crate::report::readiness::{self, table};
pub use crate::report::readiness::{CHECKS, Cell, Mark, Row};
use crate::report::render::{minute, x};
use crate::steps::placement::{ControlReading, ControlSaid};
use chrono::{DateTime, Utc};

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

/// Whether a failover to each standby is forecast to meet the tier's RTO
/// at its median (estimated from the model, never measured): a restore
/// from backups may put the RTO out of reach, which this says before an
/// outage does.
fn rto(p: &PlanStatus) -> Cell {
    let show = crate::forecast::show;
    let marks = standbys(p)
        .filter_map(|r| Some((r, r.rto_forecast?)))
        .map(|(r, f)| match f.p50_seconds <= f.target_seconds {
            true => (Mark::Ok, None),
            false => (
                Mark::Fail,
                Some(format!(
                    "to {}: {} at the median ({} at p90), over the RTO of {} ({})",
                    r.region,
                    show(f.p50_seconds),
                    show(f.p90_seconds),
                    show(f.target_seconds),
                    f.basis
                )),
            ),
        })
        .collect();
    cell("rto forecast", marks)
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

/// What one data-plane control says of where the plan serves: its region
/// serves exactly when the plan serves from it. A control missing or not
/// read says nothing of where traffic goes: whether each is there and
/// readable is the standby checks' column (the switch's own readiness),
/// not counted twice here.
fn control(p: &PlanStatus, c: &ControlReading) -> Option<(Mark, Option<String>)> {
    let at = format!("{} control in {}", c.record, c.region);
    let serves = c.region == p.active_region;
    Some(match (&c.said, serves) {
        (ControlSaid::Serve, true) | (ControlSaid::Drain, false) => (Mark::Ok, None),
        (ControlSaid::Drain, true) => (
            Mark::Fail,
            Some(format!("{at} says drain where the plan serves")),
        ),
        (ControlSaid::Serve, false) => (
            Mark::Fail,
            Some(format!(
                "{at} says serve; the plan serves from {}",
                p.active_region
            )),
        ),
        (ControlSaid::Missing | ControlSaid::Unknown(_), _) => return None,
    })
}

fn traffic(p: &PlanStatus) -> Cell {
    let controls = p.controls.iter().filter_map(|c| control(p, c));
    // A switch that needs one region's control plane (Route 53's in
    // us-east-1, without accelerated recovery) is said in the cell, plainly,
    // without failing it: traffic goes where it should today.
    let depends = (p.dns.iter())
        .filter_map(|d| Some((d, d.switch_depends.as_ref()?)))
        .map(|(d, why)| (Mark::Ok, Some(format!("{}: switch: {why}", d.name))));
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
        .chain(controls)
        .chain(depends)
        .collect();
    cell("traffic", marks)
}

fn checks(p: &PlanStatus) -> Cell {
    let marks = standbys(p)
        .flat_map(|r| r.checks.iter())
        .map(|f| match &f.problem {
            None if f.unknown => (
                Mark::Unknown,
                Some(format!("{} in {}: {}", f.resource, f.region, f.state)),
            ),
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
                rto(p),
                capacity(p),
                traffic(p),
                checks(p),
                evidence(p),
                verified(p),
            ],
        })
        .collect()
}

/// The matrix of `report` read at `at`, with what the read could not say
/// for every plan (`notes`), for the report's dashboard.
pub fn matrix(report: &StatusReport, at: DateTime<Utc>, notes: Vec<String>) -> readiness::Matrix {
    readiness::Matrix::Read {
        at,
        rows: rows(report),
        notes,
    }
}

const STYLE: &str = r#"
body { margin: 0; color: #1b1f24; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; }
p.meta { color: #57606a; margin: 0 0 14px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 6px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; }
@media print { * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"#;

/// The matrix as one self-contained page (no script, nothing fetched):
/// a row per plan, a column per check, each cell its word and why.
pub fn html(report: &StatusReport, at: DateTime<Utc>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Readiness, {0}</title>\n<style>{STYLE}{1}</style>\n</head>\n<body>\n<main>\n<h1>Readiness, {0}</h1>",
        x(&minute(at)),
        readiness::STYLE
    );
    let _ = writeln!(
        o,
        r#"<p class="meta">Read from the clouds and the drill history by <code>drctl status</code>: {}</p>"#,
        readiness::LEGEND
    );
    table(&mut o, &rows(report));
    let _ = writeln!(o, "</main>\n</body>\n</html>");
    o
}

#[cfg(test)]
mod tests;
