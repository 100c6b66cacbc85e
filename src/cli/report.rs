//! `drctl report`: RTO/RPO achieved against target per tier and plan, drill
//! cadence, findings and compliance controls, from the journals of the
//! settings' state (local or shared) and nothing else; `--run RUN` drafts
//! one run's post-incident report.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt as _;

use super::{CliError, Exit, load_plans, out};
use drctl::config::Settings;
use drctl::plan::duration::parse_duration;
use drctl::report::{self, JournalText, Request, Window, render};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Markdown, for people (and the post-incident report).
    #[default]
    Md,
    /// JSON, `drctl.report/v1` (schema: docs/report.schema.json).
    Json,
    /// CSV: one row per run and plan.
    Csv,
    /// JUnit XML: one testsuite per plan, one testcase per run.
    Junit,
    /// HTML: one self-contained page (no network, no JavaScript) with a
    /// timeline of every run; prints well.
    Html,
}

/// `drctl report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Runs that started in the last DURATION (`90d`, `4w`).
    #[arg(long, default_value = "90d", value_parser = parse_duration, conflicts_with = "from")]
    since: std::time::Duration,
    /// Runs that started at or after this instant (RFC 3339, or a date).
    #[arg(long, value_parser = parse_instant)]
    from: Option<DateTime<Utc>>,
    /// Runs that started at or before this instant (default: now).
    #[arg(long, value_parser = parse_instant)]
    to: Option<DateTime<Utc>>,
    /// Only these plans (repeat the flag).
    #[arg(long = "plan", id = "only_plans")]
    only: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Write to FILE (whole or not at all) instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The dashboard: add the readiness matrix (plans by checks), read live
    /// from the clouds and the drill history, to the HTML report. Without
    /// it the report is computed from journals alone.
    #[arg(long, conflicts_with = "run")]
    readiness: bool,
    /// How long one readiness read may take before its region is shown as
    /// unreachable (e.g. 2s, 5s; default 5s), with `--readiness`.
    #[arg(long, value_parser = parse_duration, requires = "readiness")]
    read_timeout: Option<std::time::Duration>,
    /// The post-incident report of one run (Markdown).
    #[arg(long, conflicts_with_all = ["since", "from", "to", "only_plans"])]
    run: Option<String>,
}

/// An instant: RFC 3339, or a date (its midnight, UTC).
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = s.parse::<DateTime<Utc>>() {
        return Ok(t);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("`{s}` is not an instant: use 2026-11-23 or 2026-11-23T08:00:00Z"))
}

/// Runs `drctl report`.
pub async fn run(a: ReportArgs, settings: &Settings) -> Result<Exit, CliError> {
    if a.readiness && a.format != Format::Html {
        return Err(
            CliError::invalid("the readiness matrix is drawn in the HTML report only")
                .hint("add --format html, or use `drctl status --output json` for it as JSON"),
        );
    }
    let loaded = load_plans(settings, &[])?;
    if let Some(p) = a.only.iter().find(|p| loaded.plan(p).is_none()) {
        let names: Vec<&str> = loaded.plans.iter().map(|p| p.name()).collect();
        return Err(CliError::invalid(format!("no plan named {p}"))
            .hint(format!("the plans are {}", names.join(", "))));
    }
    let now = Utc::now();
    let state = super::open_state_to_read(settings, None).await?;
    let store = state.journals.clone();
    if let Some(run) = &a.run {
        return post_incident(&a, run, store.as_ref(), &loaded.plans, now).await;
    }
    let to = a.to.unwrap_or(now);
    let from = a
        .from
        .unwrap_or_else(|| drctl::plan::duration::before(to, a.since));
    if from > to {
        return Err(CliError::invalid(format!(
            "--from {from} is after --to {to}"
        )));
    }
    let keys = store.keys().clone();
    let journals = read_journals(store).await?;
    let req = Request {
        plans: &loaded.plans,
        only: a.only.clone(),
        window: Window { from, to },
        now,
        keys: &keys,
    };
    let mut r = report::build(&req, &journals);
    // An observer's journal counts only when a listed observer signed it
    // (a writer of the state cannot add the watchers' decisions), and as
    // the observer whose key signed it (one observer cannot speak for
    // another).
    let watchers = watcher_journals(settings, state.watch.as_ref()).await?;
    report::add_watch(&mut r, &watchers);
    let text = match a.format {
        Format::Md => render::markdown(&r),
        Format::Json => render::json(&r),
        Format::Csv => render::csv(&r),
        Format::Junit => render::junit(&r),
        Format::Html if a.readiness => {
            let shown: Vec<_> = (loaded.plans.iter())
                .filter(|p| r.scope.iter().any(|s| s == p.name()))
                .cloned()
                .collect();
            let limit =
                (a.read_timeout).unwrap_or(drctl::status::StatusOptions::default().read_timeout);
            let m = super::status::readiness_now(settings, &shown, limit).await;
            report::html::page(&r, Some(&m))
        }
        Format::Html => report::html::html(&r),
    };
    write_out(a.out.as_deref(), &text)
}

/// `drctl report --run RUN`: the post-incident report of one run.
async fn post_incident(
    a: &ReportArgs,
    run: &str,
    store: &dyn drctl::journal::JournalStore,
    plans: &[drctl::plan::Plan],
    now: DateTime<Utc>,
) -> Result<Exit, CliError> {
    if a.format != Format::Md {
        return Err(
            CliError::invalid("the post-incident report is Markdown").hint(format!(
                "drop --format, or use `drctl runs show {run} --output json` for the run's JSON"
            )),
        );
    }
    // The facts first: every one anchored in the journal read after.
    let late = late_facts(store, run).await;
    let (text, head) = drctl::journal::snapshot(store, run).await.map_err(|e| {
        // The journal error's own hint, when it has one, says it better.
        let e = CliError::invalid_input(e);
        CliError::invalid(format!("cannot read the journal of {run}: {}", e.message)).hint(
            e.hint
                .unwrap_or_else(|| "`drctl runs list` shows the runs".into()),
        )
    })?;
    let journal = JournalText {
        run_id: run.to_string(),
        text,
        head,
        late,
    };
    let md = report::incident::post_incident(&journal, plans, (now, store.keys()))
        .map_err(CliError::invalid_input)?;
    write_out(a.out.as_deref(), &md)
}

/// Writes `text` to `out` whole (a temporary file renamed over it), or to
/// standard output.
fn write_out(out: Option<&Path>, text: &str) -> Result<Exit, CliError> {
    let Some(path) = out else {
        out!("{text}");
        return Ok(Exit::Ok);
    };
    let written = super::write_whole(path, text);
    if let Err(e) = written {
        return Err(
            CliError::invalid(format!("cannot write {}: {e}", path.display()))
                .hint("check the directory exists and is writable"),
        );
    }
    super::errln!("wrote {}", path.display());
    Ok(Exit::Ok)
}

/// The observers' journals of `store` that a listed observer signed, each
/// left out (and said) where a record names an observer other than the
/// one whose key signed it (`runs::watch::misattributed`).
async fn watcher_journals(
    settings: &Settings,
    store: &dyn drctl::journal::JournalStore,
) -> Result<Vec<(String, Vec<drctl::journal::Record>)>, CliError> {
    let owners: std::collections::BTreeMap<String, String> = (settings.watch.observers.iter())
        .flat_map(|o| o.keys.iter().map(|k| (k.id(), o.name.clone())))
        .collect();
    let mut kept = Vec::new();
    for (id, records) in super::read_runs(store).await?.runs {
        let text = store.read(&id).await?;
        // The records read are those its head covers (authenticated).
        match drctl::runs::watch::misattributed(&text, records.len(), &owners) {
            None => kept.push((id, records)),
            Some(why) => super::errln!(
                "warning: watcher journal {id} is left out: {why} (one observer's key cannot speak for another)"
            ),
        }
    }
    Ok(kept)
}

/// Every journal of `store`, with its head: one listing, then the journals
/// read concurrently. A journal that cannot be read at all is reported,
/// empty: its absence from the figures shows as a finding, and here why.
async fn read_journals(
    store: std::sync::Arc<dyn drctl::journal::JournalStore>,
) -> Result<Vec<JournalText>, CliError> {
    let ids = store.list().await?;
    Ok(futures::stream::iter(ids.into_iter().map(|id| {
        let store = store.clone();
        async move {
            // The facts first: every one anchored in the journal read after.
            let late = late_facts(store.as_ref(), &id).await;
            let (text, head) = match drctl::journal::snapshot(store.as_ref(), &id).await {
                Ok(x) => x,
                Err(e) => {
                    super::errln!("warning: cannot read the journal of {id}: {e}");
                    Default::default()
                }
            };
            JournalText {
                run_id: id,
                text,
                head,
                late,
            }
        }
    }))
    .buffered(16)
    .collect()
    .await)
}

/// The late facts beside run `id`'s journal (a retroactive approval,
/// deliveries): none, with a warning, when they cannot be read.
async fn late_facts(
    store: &dyn drctl::journal::JournalStore,
    id: &str,
) -> Vec<drctl::journal::late::Late> {
    match drctl::journal::late::read(store, id).await {
        Ok(f) => {
            for (fact, why) in &f.unreadable {
                super::errln!("warning: run {id}: late fact {fact} is left out: {why}");
            }
            f.facts
        }
        Err(e) => {
            super::errln!("warning: cannot read the late facts of {id}: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `report --out` wrote through `.<name>.<pid>.tmp`, a name anyone could
    /// guess and plant a symlink at, and `std::fs::write` follows it.
    #[cfg(unix)]
    #[test]
    fn regression_report_out_wrote_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("report.md");
        // The old temporary name, and the target itself, point at the victim.
        let old_tmp = dir
            .path()
            .join(format!(".report.md.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_out(Some(&out), "# report\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // The target is now the report itself, not a link to the victim.
        let meta = std::fs::symlink_metadata(&out).unwrap();
        assert!(meta.file_type().is_file(), "{meta:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "# report\n");
        // Nothing else was left behind but the planted link.
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert_eq!(left, [old_tmp.file_name().unwrap().to_string_lossy()]);
    }
}
