//! `drctl status`: readiness per plan and region.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;

use super::{CliError, Exit, Output, load_plans, out, outln, select};
use drctl::config::Settings;
use drctl::plan::duration::{format_duration, parse_duration};
use drctl::status::{
    DEFAULT_LAG_WINDOW, DbStatus, RegionStatus, StatusOptions, StatusReport, status, verified,
};

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this plan.
    #[arg(long)]
    pub plan: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    /// How far back to read replica lag (e.g. 5m, 15m).
    #[arg(long, value_parser = parse_duration, default_value = "15m")]
    pub lag_window: Duration,
    /// How long one read may take before its region is shown as unreachable
    /// (e.g. 2s, 5s): a region that is down must not hold the report up.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub read_timeout: Duration,
    /// Also write the readiness matrix (plans by checks, each cell ok,
    /// unknown or FAIL with why) to FILE, one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

/// Runs `status`.
pub async fn run(args: StatusArgs, settings: &Settings) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, args.plan.as_slice())?;
    let plans: Vec<_> = select(&loaded, args.plan.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let window = if args.lag_window.is_zero() {
        DEFAULT_LAG_WINDOW
    } else {
        args.lag_window
    };
    let opts = StatusOptions {
        lag_window: window,
        read_timeout: args.read_timeout,
    };
    let (report, history) = status_with_history(settings, &plans, &clouds, &opts).await;
    if let Some(warning) = history.warning(settings, &opts) {
        super::errln!("warning: {warning}");
    }
    if let Some(path) = &args.html {
        let page = drctl::status::matrix::html(&report, chrono::Utc::now());
        super::write_whole(path, &page).map_err(|e| {
            CliError::invalid(format!(
                "cannot write the readiness page to {}: {e}",
                path.display()
            ))
            .hint("name a file in a directory you can write")
        })?;
    }
    match args.output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => out!("{}", render(&report)),
    }
    Ok(if report.all_ready() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Puts each plan's drill cadence and verified state on its status.
fn judge_all(
    report: &mut StatusReport,
    plans: &[drctl::plan::Plan],
    rows: &[drctl::runs::schedule::Cadence],
) {
    let now = chrono::Utc::now();
    for (p, plan) in report.plans.iter_mut().zip(plans) {
        p.drill = rows.iter().find(|r| r.plan == p.plan).cloned();
        p.verified = Some(verified::judge(plan, p, p.drill.as_ref(), now));
    }
}

/// Whether the drill history was read beside the status reads.
enum History {
    /// It was: each plan has its cadence and verified state.
    Read,
    /// It could not be.
    Failed(CliError),
    /// It did not answer within the read timeout.
    TimedOut,
}

impl History {
    /// What to warn of when the history was not read.
    fn warning(&self, settings: &Settings, opts: &StatusOptions) -> Option<String> {
        match self {
            Self::Read => None,
            Self::Failed(e) => Some(format!("cannot read the drill history: {e:#}")),
            Self::TimedOut => Some(format!(
                "the drill history ({}) did not answer within {}s; shown without it",
                settings.state,
                opts.read_timeout.as_secs_f64()
            )),
        }
    }
}

/// The readiness matrix of `plans` read now, for the report's dashboard:
/// the status reads and the drill history, each bounded by `read_timeout`;
/// clouds that cannot be reached at all make a matrix not read, with why.
pub(super) async fn readiness_now(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    read_timeout: Duration,
) -> drctl::report::readiness::Matrix {
    let clouds = match drctl::cloud::connect(&settings.cloud).await {
        Ok(c) => c,
        Err(e) => {
            return drctl::report::readiness::Matrix::NotRead(format!(
                "the clouds could not be reached: {e:#}"
            ));
        }
    };
    let opts = StatusOptions {
        lag_window: DEFAULT_LAG_WINDOW,
        read_timeout,
    };
    let at = chrono::Utc::now();
    let (report, history) = status_with_history(settings, plans, &clouds, &opts).await;
    let notes = history.warning(settings, &opts).into_iter().collect();
    drctl::status::matrix::matrix(&report, at, notes)
}

/// The readiness of `plans` and, read beside it, the drill history that
/// gives each plan its cadence and verified state: shown, never part of
/// readiness, and bounded like every other read (a shared state may be
/// unreachable during an outage; status must work when little else does).
/// A bucket is reached through a standby region, not the home region that
/// may be down.
async fn status_with_history(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    clouds: &drctl::cloud::Clouds,
    opts: &StatusOptions,
) -> (StatusReport, History) {
    let via = plans
        .iter()
        .find_map(|p| p.regions().iter().find(|r| *r != p.home()).cloned());
    let (mut report, cadence) = tokio::join!(
        status(clouds, plans, opts),
        tokio::time::timeout(
            opts.read_timeout,
            super::history::cadence(settings, plans, via.as_deref(), Some(clouds))
        )
    );
    let history = match cadence {
        Ok(Ok(rows)) => {
            judge_all(&mut report, plans, &rows);
            History::Read
        }
        Ok(Err(e)) => History::Failed(e),
        Err(_) => History::TimedOut,
    };
    (report, history)
}

/// Each plan's verified state now (status and drill cadence read at once,
/// bounded by the status defaults), for a preview: `None` when the reads
/// did not answer in time (said on stderr).
pub async fn verified_now(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    clouds: &drctl::cloud::Clouds,
) -> Option<Vec<(String, verified::Verified)>> {
    let opts = StatusOptions::default();
    let (report, history) = status_with_history(settings, plans, clouds, &opts).await;
    match history {
        History::Read => {}
        History::Failed(e) => {
            super::errln!(
                "warning: cannot read the drill history, so not whether the plans are verified: {e:#}"
            );
            return None;
        }
        History::TimedOut => {
            super::errln!(
                "warning: the drill history did not answer in time: the plans' verified state is not shown"
            );
            return None;
        }
    }
    Some(
        (report.plans.into_iter())
            .filter_map(|p| Some((p.plan, p.verified?)))
            .collect(),
    )
}

/// Each plan's verified state when a run that began at `began` began,
/// judged from its definition and the drills before it (the compliance
/// report's rule, `runs::verified::by_definition`): read after the run,
/// beside it, bounded by the status read timeout; `None`, said on stderr,
/// when the drill history did not read.
pub async fn verified_at_start(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    clouds: &drctl::cloud::Clouds,
    began: chrono::DateTime<chrono::Utc>,
) -> Option<Vec<(String, verified::Verified)>> {
    let limit = StatusOptions::default().read_timeout;
    let history = super::history::cadence_at(settings, plans, (None, Some(clouds)), began);
    let rows = match tokio::time::timeout(limit, history).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            super::errln!(
                "warning: cannot read the drill history, so not whether the plans were verified: {e:#}"
            );
            return None;
        }
        Err(_) => {
            super::errln!(
                "warning: the drill history did not answer in time: whether the plans were verified is not said"
            );
            return None;
        }
    };
    let judged = (plans.iter())
        .filter_map(|p| {
            let c = rows.iter().find(|c| c.plan == p.name())?;
            Some((
                p.name().to_string(),
                drctl::runs::verified::by_definition(p, c, began),
            ))
        })
        .collect();
    Some(judged)
}

/// The differences a text report lists before it says how many more.
const SHOWN_DIFFERENCES: usize = 8;

/// The plan's verified state, one line, and each difference under it.
pub fn render_verified(o: &mut String, v: &verified::Verified) {
    let when = |d: &Option<chrono::DateTime<chrono::Utc>>| {
        d.map(|t| t.format("%Y-%m-%d %H:%MZ").to_string())
            .unwrap_or_default()
    };
    if v.verified {
        // What the drill proved: a failover to its target, at its depth.
        let proved = (v.proved.as_ref())
            .filter(|p| !p.target.is_empty())
            .map(|p| {
                let depth = if p.depth.is_empty() {
                    "a"
                } else {
                    p.depth.as_str()
                };
                format!(", {depth} drill to {}", p.target)
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  verified: the plan and the world match drill {} ({}{proved}), within the interval",
            v.drill.as_deref().unwrap_or_default(),
            when(&v.drilled_at)
        );
        // Without run keys listed, any writer of the state could have
        // written that drill's journal: what it proves is unauthenticated.
        if v.proved.as_ref().is_some_and(|p| !p.authenticated) {
            let _ = writeln!(
                o,
                "    unauthenticated: no run key is listed, so anyone who can write the state could have written that drill's journal (docs/security.md, run keys)"
            );
        }
    } else if v.differences.is_empty() {
        let _ = writeln!(
            o,
            "  NOT VERIFIED: {}",
            v.reason.as_deref().unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            o,
            "  NOT VERIFIED: changed since drill {} ({}):",
            v.drill.as_deref().unwrap_or_default(),
            when(&v.drilled_at)
        );
        for d in v.differences.iter().take(SHOWN_DIFFERENCES) {
            let _ = writeln!(o, "    {d}");
        }
        if v.differences.len() > SHOWN_DIFFERENCES {
            let _ = writeln!(
                o,
                "    and {} more (--output json lists them)",
                v.differences.len() - SHOWN_DIFFERENCES
            );
        }
    }
    match v.lag {
        Some(verified::Band::Within) => {}
        Some(b) => {
            let _ = writeln!(o, "  standby lag: {} the RPO", b.words());
        }
        None => {}
    }
}

/// Renders the report for people.
pub fn render(report: &StatusReport) -> String {
    let mut o = String::new();
    for p in &report.plans {
        let _ = writeln!(
            o,
            "plan {} ({} tier: RTO {}, RPO {}): {}",
            p.plan,
            p.tier,
            format_duration(Duration::from_secs(p.rto_seconds)),
            format_duration(Duration::from_secs(p.rpo_seconds)),
            if p.ready { "READY" } else { "NOT READY" }
        );
        let _ = writeln!(o, "  active region: {}", p.active_region);
        if !p.allowed_regions.is_empty() {
            let _ = writeln!(
                o,
                "  data residency: only in {} (allowed_regions)",
                p.allowed_regions.join(", ")
            );
        }
        if let Some(d) = &p.drill {
            let last = d.last_said();
            let _ = writeln!(
                o,
                "  drills: {last}{}",
                if d.overdue { "; OVERDUE" } else { "" }
            );
        }
        if let Some(v) = &p.verified {
            render_verified(&mut o, v);
        }
        for d in &p.dns {
            let _ = writeln!(
                o,
                "  dns {} → {}{}",
                d.name,
                d.values.join(", "),
                d.points_to
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_else(|| " (no region matches)".into())
            );
            if let Some(why) = &d.switch_depends {
                let _ = writeln!(o, "    switch: {why}");
            }
        }
        for r in &p.regions {
            render_region(&mut o, r);
        }
        for e in &p.evidence {
            let state = match (e.reachable, &e.error) {
                (Some(true), _) => "reachable".to_string(),
                (Some(false), _) => "missing".to_string(),
                (None, Some(err)) => format!("error: {err}"),
                (None, None) => "unknown".to_string(),
            };
            let _ = writeln!(o, "  evidence {}: {state}", e.destination);
        }
        for why in &p.problems {
            let _ = writeln!(o, "  ✗ {why}");
        }
        o.push('\n');
    }
    o
}

/// One region of a plan: its role and readiness, then each resource.
fn render_region(o: &mut String, r: &RegionStatus) {
    let _ = writeln!(
        o,
        "  {}{} [{}]{}{}",
        r.region,
        r.gcp_region
            .as_deref()
            .map(|g| format!(" (GCP {g})"))
            .unwrap_or_default(),
        r.role,
        if r.unreachable.is_some() {
            " UNREACHABLE"
        } else {
            ""
        },
        if r.role == "standby" {
            if r.ready { ": ready" } else { ": not ready" }
        } else {
            ""
        }
    );
    if let Some(f) = r.rto_forecast {
        let show = drctl::forecast::show;
        let _ = writeln!(
            o,
            "    RTO forecast p50 {}, p90 {} against {} ({}, from the model of the providers' times){}",
            show(f.p50_seconds),
            show(f.p90_seconds),
            show(f.target_seconds),
            f.basis,
            if f.p90_seconds > f.target_seconds {
                ": AT RISK at p90"
            } else {
                ""
            }
        );
    }
    for db in &r.databases {
        render_db(o, db);
    }
    for g in &r.compute {
        match (g.capacity, g.in_service, &g.status) {
            (Some(c), _, Some(status)) => {
                let _ = writeln!(
                    o,
                    "    {:<8} {} {} (min/desired/max), {}",
                    g.label, g.group, c, status
                );
            }
            (Some(c), Some(n), None) => {
                let _ = writeln!(
                    o,
                    "    {:<8} {} {} (min/desired/max), {} in service",
                    g.label, g.group, c, n
                );
            }
            _ if r.unreachable.is_some() => {
                let _ = writeln!(o, "    {:<8} {} unreachable", g.label, g.group);
            }
            _ => {
                let _ = writeln!(o, "    {:<8} {} missing", g.label, g.group);
            }
        }
        for note in &g.notes {
            let _ = writeln!(o, "      note: {note}");
        }
    }
    for c in &r.checks {
        let _ = writeln!(o, "    {:<8} {}", c.resource, c.state);
    }
    for why in &r.problems {
        let _ = writeln!(o, "    ✗ {why}");
    }
}

/// One database of a region, with its replica lag against the RPO.
fn render_db(o: &mut String, db: &DbStatus) {
    let rpo = match db.within_rpo {
        Some(true) => " within RPO",
        Some(false) => " ABOVE RPO",
        None => "",
    };
    let lag = match (db.role.as_str(), db.lag_seconds, db.restorable_point) {
        // A backup standby: its "lag" is its newest restorable point's age.
        ("replica", Some(l), Some(point)) => format!(
            ", restorable to {} ({} ago){rpo}",
            point.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            format_duration(drctl::plan::duration::from_secs_f64(l.round())),
        ),
        ("replica", Some(l), None) => format!(
            ", lag {} (max of {} datapoints over {}){}",
            format_duration(drctl::plan::duration::from_secs_f64(l.round())),
            db.lag_datapoints,
            format_duration(Duration::from_secs(db.lag_window_seconds)),
            rpo
        ),
        ("replica", None, _) => ", lag unknown (no datapoints)".into(),
        _ => String::new(),
    };
    // A backup standby's copy is its backups, not a replica.
    let role = match (&db.restorable_point, &db.source) {
        (Some(_), Some(of)) => format!("backups of {of}"),
        _ => db.role.clone(),
    };
    let _ = writeln!(
        o,
        "    database {} {}{}{}",
        db.instance,
        role,
        db.state
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        lag
    );
    for note in &db.notes {
        let _ = writeln!(o, "      note: {note}");
    }
}

#[cfg(test)]
mod verified_tests {
    use drctl::runs::verified::{Band, Proved, Verified};

    /// Issue 74, attack 6: without run keys listed, every drill journal is
    /// read as it reads, so a "verified" any writer of the state could
    /// have made said nothing of it; it now says it is unauthenticated.
    #[test]
    fn a_verified_plan_says_when_its_drill_is_unauthenticated() {
        let verified = |authenticated| {
            let v = Verified {
                verified: true,
                drill: Some("20261101T100000Z-drill-a1".into()),
                drilled_at: Some(chrono::Utc::now()),
                staleness: Some(Band::Within),
                lag: Some(Band::Within),
                differences: Vec::new(),
                reason: None,
                proved: Some(Proved {
                    target: "us-east-1".into(),
                    depth: "shadow".into(),
                    authenticated,
                }),
            };
            let mut o = String::new();
            super::render_verified(&mut o, &v);
            o
        };
        let keyed = verified(true);
        assert!(
            keyed.contains("verified: the plan and the world match"),
            "{keyed}"
        );
        assert!(keyed.contains("shadow drill to us-east-1"), "{keyed}");
        assert!(!keyed.contains("unauthenticated"), "{keyed}");
        let open = verified(false);
        assert!(
            open.contains("unauthenticated: no run key is listed"),
            "{open}"
        );
    }
}

#[cfg(test)]
mod html_tests {
    /// Issue 74, attack 8: `status --html FILE` wrote with `std::fs::write`,
    /// which follows a symlink planted at FILE: whoever could write the
    /// directory had the readiness page overwrite any file the operator
    /// may write. It writes as `report --out` does
    /// (`super::super::write_whole`): the link is replaced, the file it
    /// pointed at untouched.
    #[cfg(unix)]
    #[test]
    fn regression_status_html_wrote_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let page = dir.path().join("readiness.html");
        std::os::unix::fs::symlink(&victim, &page).unwrap();
        super::super::write_whole(&page, "<html></html>").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&page).unwrap();
        assert!(meta.file_type().is_file(), "{meta:?}");
        assert_eq!(std::fs::read_to_string(&page).unwrap(), "<html></html>");
        let tmp = (std::fs::read_dir(dir.path()).unwrap())
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(tmp, 0, "nothing left behind");
    }
}

#[cfg(test)]
mod residency_tests {
    /// `status` says where a plan's data may be, and says nothing of a
    /// plan without a limit.
    #[tokio::test]
    async fn status_says_a_plans_data_residency() {
        // An empty world: nothing is ready, and the limit is said anyway.
        let world = drctl::cloud::fake::FakeCloud::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        let loaded = drctl::plan::load(&[root.join("payments.toml"), root.join("tiers.toml")]);
        let mut plans = loaded.plans;
        plans[0].spec.plan.allowed_regions = plans[0].spec.plan.regions.clone();
        let options = drctl::status::StatusOptions::default();
        let report = drctl::status::status(&world.clouds(), &plans, &options).await;
        let text = super::render(&report);
        let said: Vec<&str> = (text.lines())
            .filter(|l| l.contains("data residency"))
            .collect();
        assert_eq!(
            said,
            ["  data residency: only in us-west-2, us-east-1, eu-west-1 (allowed_regions)"],
            "{text}"
        );
    }
}
