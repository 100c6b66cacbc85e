//! The readiness matrix as a page draws it: plans by checks, each cell ok,
//! unknown, FAIL (with why) or none, and when it was read.
//!
//! Why it lives here and not in `status`: two pages draw it, `drctl status
//! --html` and the dashboard `drctl report --format html --readiness`, and
//! the report sits below `status` (status uses the report's renderers, never
//! the other way). `status::matrix` judges each cell from a live status
//! read; this module only holds the cells and draws them, so both pages
//! show the same words for the same read. A matrix that was not read is
//! said so on the page with why, never drawn as a table of unknowns.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::render::{minute, x};

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

    /// Its class on the page.
    fn class(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            m => m.word(),
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
pub const CHECKS: [&str; 7] = [
    "data and lag",
    "rto forecast",
    "capacity",
    "traffic",
    "standby checks",
    "evidence",
    "verified",
];

/// A matrix read at one instant, or why it could not be.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Read from the clouds and the drill history at `at`.
    Read {
        /// When the reads were made.
        at: DateTime<Utc>,
        /// A row per plan.
        rows: Vec<Row>,
        /// What the read could not say for every plan (the drill history
        /// that did not answer), shown above the table.
        notes: Vec<String>,
    },
    /// Not read, and why (the clouds could not be reached at all).
    NotRead(String),
}

/// The matrix's styles, scoped to its table (both pages add them).
pub const STYLE: &str = r#"
table.matrix td.mark { font-weight: 700; }
table.matrix td.mark .why { display: block; font-weight: 400; font-size: 12px; color: #57606a; }
table.matrix td.ok { color: #1a7f37; background: #dafbe1; }
table.matrix td.fail { color: #b3261e; background: #ffebe9; }
table.matrix td.unknown { color: #7d4e00; background: #fff8c5; }
table.matrix td.none { color: #57606a; }
"#;

/// How a page reads the matrix, after where it was read from.
pub const LEGEND: &str = "each plan by each check, ok, unknown (could not be judged) or FAIL with why; none: the plan has nothing the check reads.";

/// At most this many reasons are drawn in a cell (the JSON of `status`
/// carries them all).
const WHY_SHOWN: usize = 4;

/// The table: a row per plan, a column per check, each cell its word and
/// why (at most [`WHY_SHOWN`] reasons).
pub fn table(o: &mut String, rows: &[Row]) {
    let _ = write!(
        o,
        r#"<table class="matrix"><thead><tr><th>Plan</th><th>Serves from</th><th>Ready</th>"#
    );
    for c in CHECKS {
        let _ = write!(o, "<th>{c}</th>");
    }
    let _ = writeln!(o, "</tr></thead><tbody>");
    for r in rows {
        let _ = write!(
            o,
            r#"<tr data-plan="{0}"><th>{0}</th><td>{1}</td><td class="mark {2}" data-check="ready" data-mark="{2}">{3}</td>"#,
            x(&r.plan),
            x(&r.active),
            if r.ready { "ok" } else { "fail" },
            if r.ready { "READY" } else { "NOT READY" }
        );
        for c in &r.cells {
            let why: String = (c.why.iter().take(WHY_SHOWN))
                .map(|w| format!(r#"<span class="why">{}</span>"#, x(w)))
                .collect();
            let more = c.why.len().saturating_sub(WHY_SHOWN);
            let more = if more > 0 {
                format!(r#"<span class="why">and {more} more</span>"#)
            } else {
                String::new()
            };
            let _ = write!(
                o,
                r#"<td class="mark {0}" data-check="{1}" data-mark="{0}">{2}{why}{more}</td>"#,
                c.mark.class(),
                c.check,
                c.mark.word()
            );
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</tbody></table>");
}

/// The report's readiness section: when and how it was read, then the
/// table; or why it was not read.
pub fn section(o: &mut String, m: &Matrix) {
    let _ = writeln!(
        o,
        r#"<section id="readiness">
<h2>Readiness now</h2>"#
    );
    match m {
        Matrix::Read { at, rows, notes } => {
            let _ = writeln!(
                o,
                r#"<p class="meta">Read from the clouds and the drill history at {} (the rest of this report is from journals): {LEGEND}</p>"#,
                x(&minute(*at))
            );
            for n in notes {
                let _ = writeln!(o, r#"<p class="meta note">{}</p>"#, x(n));
            }
            table(o, rows);
        }
        Matrix::NotRead(why) => {
            let _ = writeln!(
                o,
                r#"<p class="meta" data-readiness="not-read">Not read: {}. Every plan's readiness is unknown; <code>drctl status</code> says more.</p>"#,
                x(why)
            );
        }
    }
    let _ = writeln!(o, "</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(plan: &str, mark: Mark, why: usize) -> Row {
        Row {
            plan: plan.into(),
            active: "us-west-2".into(),
            ready: mark == Mark::Ok,
            cells: (CHECKS.iter())
                .map(|check| Cell {
                    check,
                    mark,
                    why: (0..why).map(|i| format!("reason {i} <b>")).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_cell_per_plan_and_check_its_reasons_escaped_and_counted_past_four() {
        let mut o = String::new();
        table(&mut o, &[row("a&b", Mark::Fail, 6), row("c", Mark::Ok, 0)]);
        assert_eq!(
            o.matches(r#"<td class="mark "#).count(),
            2 * (CHECKS.len() + 1)
        );
        assert!(o.contains(r#"data-plan="a&amp;b""#), "{o}");
        assert!(o.contains("reason 3 &lt;b&gt;") && !o.contains("reason 4"));
        assert!(o.contains("and 2 more"));
        assert!(o.contains(r#"data-check="verified" data-mark="ok">ok</td>"#));
        assert!(!o.contains("<b>"), "a reason is text, never markup");
    }

    #[test]
    fn a_matrix_not_read_says_why_and_draws_no_table() {
        let mut o = String::new();
        section(&mut o, &Matrix::NotRead("no credentials".into()));
        assert!(o.contains("Not read: no credentials."), "{o}");
        assert!(!o.contains("<table"), "{o}");
        let mut o = String::new();
        let at = "2026-11-26T08:00:00Z".parse().unwrap();
        let m = Matrix::Read {
            at,
            rows: vec![row("p", Mark::Unknown, 1)],
            notes: vec!["the drill history did not answer".into()],
        };
        section(&mut o, &m);
        assert!(o.contains("2026-11-26 08:00"), "{o}");
        assert!(o.contains("the drill history did not answer"));
        assert!(o.contains(r#"data-mark="unknown">unknown"#));
    }
}
