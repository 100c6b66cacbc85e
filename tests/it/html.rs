//! `drctl report --format html` in a real browser. Headless Chromium (the
//! distribution's `chromium-headless-shell`, which `scripts/test` installs
//! when absent; `DRCTL_CHROMIUM` names another) loads the report of the
//! fixed journals of `src/report/testdata/runs`, and the test reads what the
//! browser made of it: the summary's text as laid out (`innerText`), and for
//! every run its timeline's bars with their rendered boxes, one per step
//! that started, inside the timeline. The report itself has no script: the
//! test loads a copy with a probe appended, which writes those readings
//! into the page for `--dump-dom`. A screenshot and a print to PDF show it
//! renders on screen and on paper. No emulators.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The fixed journals' window (the golden files' window).
const WINDOW: [&str; 4] = ["--from", "2026-08-25", "--to", "2026-11-23T12:00:00Z"];

/// `drctl report` of the fixed journals' window, standard output.
fn report(args: &[&str]) -> Vec<u8> {
    let o = crate::report::report(&[&WINDOW[..], args].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "drctl report {args:?}:\n{}",
        crate::report::all(&o)
    );
    o.stdout
}

/// The browser: `DRCTL_CHROMIUM`, else the first Chromium on the PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DRCTL_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium-headless-shell", "chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// [`find_chromium`], which must find one.
fn chromium() -> PathBuf {
    find_chromium().unwrap_or_else(|| {
        panic!(
            "no headless Chromium on the PATH: `scripts/test` installs it \
             (apt-get install chromium-headless-shell), or set DRCTL_CHROMIUM"
        )
    })
}

/// Runs the browser on `page` with `args`, bounded; its standard output.
/// The page must say nothing on the console: the browser logs what the
/// page's console receives (`--enable-logging=stderr`: an error, a refused
/// load, an uncaught exception, a `console.*` call) as `INFO:CONSOLE`
/// lines, and any such line fails the test (drctl's pages run no script of
/// their own; the tests' probes log nothing).
pub(crate) async fn browse(page: &Path, args: &[String]) -> String {
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,1600",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .args(args)
    .arg(format!("file://{}", page.display()))
    .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser answers within 120 s")
        .expect("the browser starts");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{} {args:?} failed: {stderr}",
        chromium().display(),
    );
    let console = console_lines(&stderr);
    assert!(
        console.is_empty(),
        "{} said on the console:\n{}",
        page.display(),
        console.join("\n")
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The lines of the browser's log that carry what the page's console
/// received (`[...:INFO:CONSOLE:12] "message", source: ...`).
fn console_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Caught before the page's own content loads: every error event (an
/// uncaught exception, a resource that failed to load, caught in the
/// capture phase) and every refused load (a CSP violation), for the probe
/// to report beside what the console said.
const CATCHER: &str = r#"<script>
window.__drctlErrors = [];
addEventListener('error', (e) => __drctlErrors.push(String(e.message || (e.target && e.target.outerHTML) || e.type)), true);
addEventListener('unhandledrejection', (e) => __drctlErrors.push(String(e.reason)));
addEventListener('securitypolicyviolation', (e) => __drctlErrors.push('refused by the page policy: ' + e.blockedURI));
</script>"#;

/// Reads the page as laid out: appended to a copy of the report, run by
/// the browser, its result written into a `<pre>` that `--dump-dom` shows.
const PROBE: &str = r#"<script>
(() => {
  const text = (el) => (el ? el.innerText : null);
  const box = (el) => el.getBoundingClientRect();
  const out = {
    errors: window.__drctlErrors || ['the error catcher did not run'],
    title: document.title,
    summary: text(document.querySelector('#summary')),
    counts: Object.fromEntries([...document.querySelectorAll('#summary-counts thead th')]
      .map((th, i) => [th.innerText, document.querySelectorAll('#summary-counts tbody td')[i].innerText])),
    findings: document.querySelectorAll('ol.findings > li').length,
    controls: document.querySelectorAll('#controls tbody tr').length,
    signoff: document.querySelectorAll('#signoff tbody tr').length,
    timelines: [...document.querySelectorAll('svg.timeline')].map((svg) => {
      const s = box(svg);
      return {
        run: svg.dataset.run,
        plan: svg.dataset.plan,
        width: s.width,
        height: s.height,
        rto_target: svg.querySelectorAll('line.rto-target').length,
        rto_achieved: svg.querySelectorAll('line.rto-achieved').length,
        bars: [...svg.querySelectorAll('rect.bar')].map((b) => {
          const r = box(b);
          return { step: b.dataset.step, state: b.getAttribute('class'), left: r.left - s.left,
                   right: r.right - s.left, width: r.width, height: r.height,
                   fill: getComputedStyle(b).fill };
        }),
      };
    }),
    trends: [...document.querySelectorAll('svg.trend')].map((svg) => {
      const s = box(svg);
      return {
        plan: svg.dataset.plan, what: svg.dataset.what, width: s.width, height: s.height,
        goal: svg.querySelectorAll('line.goal').length,
        points: [...svg.querySelectorAll('circle.point')].map((c) => {
          const r = box(c);
          return { run: c.dataset.run, seconds: c.dataset.seconds, cls: c.getAttribute('class'),
                   x: r.left - s.left + r.width / 2, y: r.top - s.top + r.height / 2,
                   width: r.width, fill: getComputedStyle(c).fill };
        }),
      };
    }),
    waterfalls: [...document.querySelectorAll('svg.waterfall')].map((svg) => {
      const s = box(svg);
      return {
        run: svg.dataset.run, plan: svg.dataset.plan, width: s.width,
        goal: svg.querySelectorAll('line.goal').length,
        phases: [...svg.querySelectorAll('rect.phase')].map((r) => {
          const b = box(r);
          return { phase: r.dataset.phase, seconds: r.dataset.seconds, left: b.left - s.left,
                   right: b.right - s.left, width: b.width, fill: getComputedStyle(r).fill };
        }),
      };
    }),
    placement: [...document.querySelectorAll('svg.placement')].map((svg) => ({
      plan: svg.dataset.plan, before: svg.dataset.before, after: svg.dataset.after,
      width: box(svg).width,
      marks: [...svg.querySelectorAll('circle.mark')].map((c) => ({
        cls: c.getAttribute('class'), region: c.closest('g').dataset.region,
        width: box(c).width, fill: getComputedStyle(c).fill,
      })),
    })),
    calendar: [...document.querySelectorAll('table.calendar tbody tr')].map((tr) => ({
      plan: tr.dataset.plan,
      cells: [...tr.querySelectorAll('td.cell')].map((td) => ({
        week: td.dataset.week, cell: td.dataset.cell, text: td.innerText,
        width: box(td).width, background: getComputedStyle(td).backgroundColor,
      })),
    })),
  };
  const pre = document.createElement('pre');
  pre.id = 'drctl-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"#;

/// The probe's readings out of a dumped DOM.
fn probe_result(dom: &str) -> Value {
    let start = dom
        .find(r#"<pre id="drctl-probe">"#)
        .unwrap_or_else(|| panic!("the probe did not run; the DOM was:\n{dom}"));
    let rest = &dom[start + r#"<pre id="drctl-probe">"#.len()..];
    let text = &rest[..rest.find("</pre>").expect("</pre>")];
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe result ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn html_report_renders_in_headless_chromium_with_one_bar_per_step() {
    // The browser is provisioned like the emulators: required under
    // `DRCTL_IT=1` (scripts/test installs it), optional in plain `cargo test`.
    if find_chromium().is_none() && !crate::world::enabled() {
        eprintln!("skipped: no headless Chromium; set DRCTL_IT=1 (scripts/test does)");
        return;
    }
    let html = String::from_utf8(report(&["--format", "html"])).expect("utf-8");
    let model: Value = serde_json::from_slice(&report(&["--format", "json"])).expect("json");

    // Self-contained: nothing to fetch, nothing to run.
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    for banned in [
        "<script", "<link", "<img", "<iframe", "src=", "@import", "url(", "https://",
    ] {
        assert!(
            !html.contains(banned),
            "the report holds `{banned}`: it must be self-contained"
        );
    }
    let outside: Vec<&str> = html
        .match_indices("http://")
        .map(|(i, _)| &html[i..(i + 40).min(html.len())])
        .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(outside.is_empty(), "addresses in the report: {outside:?}");

    let dir = tempfile::tempdir().expect("dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("write");
    let probed = dir.path().join("probed.html");
    std::fs::write(
        &probed,
        html.replacen("<head>", &format!("<head>{CATCHER}"), 1)
            .replace("</body>", &format!("{PROBE}\n</body>")),
    )
    .expect("write");
    let got = probe_result(&browse(&probed, &["--dump-dom".into()]).await);
    // Loaded with no error: nothing thrown, refused or failed to load.
    assert_eq!(got["errors"], serde_json::json!([]), "the page's errors");

    // The summary as rendered: its counts are the report's.
    assert_eq!(
        got["title"],
        "Disaster-recovery report, 2026-08-25 to 2026-11-23"
    );
    let s = &model["summary"];
    for (head, key) in [
        ("Runs", "runs"),
        ("PASS", "pass"),
        ("FAIL", "fail"),
        ("UNKNOWN", "unknown"),
        ("Drills", "drills"),
        ("Failovers", "failovers"),
        ("Findings", "findings"),
        ("High", "high_findings"),
    ] {
        assert_eq!(
            got["counts"][head].as_str(),
            Some(s[key].to_string().as_str()),
            "summary count {head}: {:#}",
            got["counts"]
        );
    }
    assert_eq!(s["runs"], 6, "the fixed journals' runs");
    let summary = got["summary"].as_str().expect("summary text");
    for want in [
        "payments",
        "ledger",
        "critical",
        "OVERDUE",
        "20261015T080000Z-ledger-b002",
        "MISSED",
    ] {
        assert!(summary.contains(want), "summary lacks {want:?}:\n{summary}");
    }
    assert_eq!(
        got["findings"].as_u64(),
        Some(model["findings"].as_array().expect("findings").len() as u64)
    );
    assert_eq!(
        got["controls"].as_u64(),
        Some(model["controls"].as_array().expect("controls").len() as u64)
    );
    assert_eq!(got["signoff"], 3, "a line to sign per role");

    // One timeline per run and plan, one visible bar per step that started.
    let timelines = got["timelines"].as_array().expect("timelines");
    let mut rows = 0;
    for plan in model["plans"].as_array().expect("plans") {
        for run in plan["runs"].as_array().expect("runs") {
            rows += 1;
            let (id, name) = (&run["run_id"], &plan["plan"]);
            let tl = timelines
                .iter()
                .find(|t| t["run"] == *id && t["plan"] == *name)
                .unwrap_or_else(|| panic!("no timeline for {id} {name}"));
            let want: Vec<&str> = run["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .filter(|s| s["started"].is_string())
                .filter_map(|s| s["step"].as_str())
                .collect();
            let bars = tl["bars"].as_array().expect("bars");
            let drawn: Vec<&str> = bars.iter().filter_map(|b| b["step"].as_str()).collect();
            assert_eq!(drawn, want, "one bar per started step of {id}");
            let width = tl["width"].as_f64().expect("width");
            assert!(width > 600.0, "the timeline of {id} is {width}px wide");
            for b in bars {
                let (l, r) = (b["left"].as_f64().unwrap(), b["right"].as_f64().unwrap());
                assert!(
                    b["width"].as_f64().unwrap() >= 1.0 && b["height"].as_f64().unwrap() >= 8.0,
                    "a bar too small to see: {b}"
                );
                assert!(
                    l >= 0.0 && r <= width + 0.5,
                    "a bar outside its timeline ({width}px): {b}"
                );
                assert_ne!(b["fill"], "none", "an unpainted bar: {b}");
            }
            let failed = run["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["state"] == "failed")
                .count();
            assert_eq!(
                bars.iter()
                    .filter(|b| b["state"].as_str().unwrap_or_default().contains("failed"))
                    .count(),
                failed,
                "failed steps are drawn as failed in {id}"
            );
            assert_eq!(tl["rto_target"], 1, "the RTO target is marked on {id}");
            assert_eq!(
                tl["rto_achieved"].as_u64(),
                Some(u64::from(run["rto"]["seconds"].is_number())),
                "the RTO achieved is marked on {id} exactly when it was measured"
            );
        }
    }
    assert_eq!(timelines.len(), rows, "a timeline per run and plan");

    pictures_are_drawn_with_the_runs_own_numbers(&got, &model);

    // On screen and on paper; the screenshot is kept (target/test-artifacts).
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&kept).expect("the artifacts' directory");
    let shot = kept.join("report.png");
    browse(&page, &[format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let pdf = dir.path().join("report.pdf");
    browse(
        &page,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
    )
    .await;
    let pdf = std::fs::read(&pdf).expect("a PDF");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    // The page tree's root counts every page (the largest /Count).
    let text = String::from_utf8_lossy(&pdf);
    let pages = text
        .match_indices("/Count ")
        .filter_map(|(i, m)| {
            text[i + m.len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    // The first page, then each plan, the controls and the sign-off on
    // pages of their own (the print style sheet's page breaks).
    assert!(
        pages >= 5,
        "the print has {pages} page(s) ({} bytes): the print style's page breaks are not applied",
        pdf.len()
    );
}

/// The small multiples and the calendar as the browser drew them: each
/// point is its run's own figure, placed by it (a larger figure higher, an
/// unknown one on the top band, oldest left), against one target line;
/// each plan has a calendar row of painted cells, one per week.
fn pictures_are_drawn_with_the_runs_own_numbers(got: &Value, model: &Value) {
    let trends = got["trends"].as_array().expect("trends");
    let calendar = got["calendar"].as_array().expect("calendar");
    let plans = model["plans"].as_array().expect("plans");
    for plan in plans {
        let name = plan["plan"].as_str().expect("plan");
        // A run whose journal does not verify is not a point (issue 74):
        // the findings name it.
        let runs: Vec<&Value> = (plan["runs"].as_array().expect("runs").iter())
            .filter(|r| r["verdict"]["verdict"] != "REFUSED" && r["chain"]["ok"] == true)
            .collect();
        // A plan with no run in the window has no chart (nothing to draw).
        let charts = if runs.is_empty() {
            &[][..]
        } else {
            &["RTO", "RPO"][..]
        };
        for what in charts {
            let chart = (trends.iter())
                .find(|t| t["plan"] == name && t["what"] == *what)
                .unwrap_or_else(|| panic!("no {what} chart for {name}: {trends:#?}"));
            assert_eq!(chart["goal"], 1, "one target line: {chart}");
            assert!(chart["width"].as_f64().unwrap() > 300.0, "{chart}");
            let points = chart["points"].as_array().expect("points");
            assert_eq!(
                points.len(),
                runs.len(),
                "a point per run of {name}: {chart}"
            );
            let key = what.to_lowercase();
            for (p, run) in points.iter().zip(&runs) {
                assert_eq!(p["run"], run["run_id"], "oldest left: {chart}");
                let want = run[key.as_str()]["seconds"]
                    .as_f64()
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_default();
                assert_eq!(p["seconds"], want.as_str(), "{name} {what}: {p}");
                assert!(p["width"].as_f64().unwrap() >= 6.0, "visible: {p}");
                assert_ne!(p["fill"], "none", "painted: {p}");
            }
            let xs: Vec<f64> = points.iter().map(|p| p["x"].as_f64().unwrap()).collect();
            assert!(xs.windows(2).all(|w| w[0] < w[1]), "left to right: {xs:?}");
            let y = |p: &Value| p["y"].as_f64().unwrap();
            let (known, unknown): (Vec<&Value>, Vec<&Value>) =
                points.iter().partition(|p| p["seconds"] != "");
            for a in &known {
                for b in &known {
                    let (sa, sb): (f64, f64) = (
                        a["seconds"].as_str().unwrap().parse().unwrap(),
                        b["seconds"].as_str().unwrap().parse().unwrap(),
                    );
                    if sa > sb {
                        assert!(y(a) < y(b), "a larger figure is higher: {a} {b}");
                    }
                }
                for u in &unknown {
                    assert!(
                        y(u) < y(a),
                        "unknown is on the top band, never zero: {u} {a}"
                    );
                }
            }
        }
        let row = (calendar.iter())
            .find(|r| r["plan"] == name)
            .unwrap_or_else(|| panic!("no calendar row for {name}"));
        let cells = row["cells"].as_array().expect("cells");
        assert!(!cells.is_empty(), "{row}");
        for c in cells {
            assert!(c["width"].as_f64().unwrap() >= 10.0, "{c}");
        }
    }
    waterfalls_add_up_to_each_runs_rto(got, model);
    // Before and after: a ring and a filled mark, each in its region's box.
    for plan in model["plans"].as_array().expect("plans") {
        let drawn = (got["placement"].as_array().expect("placement").iter())
            .find(|p| p["plan"] == plan["plan"])
            .unwrap_or_else(|| panic!("no placement for {}", plan["plan"]));
        let want = &plan["placement"];
        assert_eq!(
            (&drawn["before"], &drawn["after"]),
            (&want["before"], &want["after"])
        );
        let marks = drawn["marks"].as_array().expect("marks");
        for (class, region) in [
            ("mark before", &want["before"]),
            ("mark after", &want["after"]),
        ] {
            let m = (marks.iter())
                .find(|m| m["cls"] == class)
                .unwrap_or_else(|| panic!("no {class} in {drawn}"));
            assert_eq!(&m["region"], region, "{drawn}");
            assert!(m["width"].as_f64().unwrap() >= 8.0, "{m}");
        }
    }
    let cell = |plan: &str, week: &str| -> Value {
        let row = calendar.iter().find(|r| r["plan"] == plan).unwrap();
        (row["cells"].as_array().unwrap().iter())
            .find(|c| c["week"] == week)
            .cloned()
            .unwrap_or_else(|| panic!("no week {week} for {plan}"))
    };
    // The fixed journals' two drills, in the week of 2026-11-16.
    let passed = cell("payments", "2026-11-16");
    assert_eq!(
        (&passed["cell"], &passed["text"]),
        (&Value::from("passed"), &Value::from("P"))
    );
    let failed = cell("ledger", "2026-11-16");
    assert_eq!(
        (&failed["cell"], &failed["text"]),
        (&Value::from("failed"), &Value::from("F"))
    );
    assert_ne!(passed["background"], failed["background"], "coloured apart");
    assert_eq!(cell("ledger", "2026-11-23")["cell"], "missed");
}

/// Each run's waterfall as drawn: its phases one after the other inside
/// the picture, painted, their lengths adding up to the run's RTO when it
/// was measured, and one said unknown (drawn, not zero) when it was not.
fn waterfalls_add_up_to_each_runs_rto(got: &Value, model: &Value) {
    let waterfalls = got["waterfalls"].as_array().expect("waterfalls");
    let mut drawn = 0;
    for plan in model["plans"].as_array().expect("plans") {
        for run in plan["runs"].as_array().expect("runs") {
            if run["verdict"]["verdict"] == "REFUSED" {
                continue;
            }
            drawn += 1;
            let w = (waterfalls.iter())
                .find(|w| w["run"] == run["run_id"] && w["plan"] == plan["plan"])
                .unwrap_or_else(|| panic!("no waterfall for {}", run["run_id"]));
            assert_eq!(w["goal"], 1, "the target is marked: {w}");
            let phases = w["phases"].as_array().expect("phases");
            assert!(!phases.is_empty(), "{w}");
            let width = w["width"].as_f64().unwrap();
            for pair in phases.windows(2) {
                let (a, b) = (
                    pair[0]["right"].as_f64().unwrap(),
                    pair[1]["left"].as_f64().unwrap(),
                );
                assert!((a - b).abs() < 1.0, "one after the other: {w}");
            }
            for ph in phases {
                assert!(ph["width"].as_f64().unwrap() >= 1.0, "{ph}");
                assert!(ph["right"].as_f64().unwrap() <= width + 0.5, "inside: {ph}");
                assert_ne!(ph["fill"], "none", "painted: {ph}");
            }
            match run["rto"]["seconds"].as_f64() {
                Some(rto) => {
                    let sum: f64 = (phases.iter())
                        .map(|p| p["seconds"].as_str().unwrap().parse::<f64>().unwrap())
                        .sum();
                    assert!((sum - rto).abs() < 0.3, "phases add up to {rto}: {w}");
                }
                None => assert!(
                    phases.iter().any(|p| p["seconds"] == ""),
                    "an unknown RTO has an unknown phase: {w}"
                ),
            }
        }
    }
    assert_eq!(waterfalls.len(), drawn, "a waterfall per run that ran");
}
