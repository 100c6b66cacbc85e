//! `drctl report` end to end on the fixed journals of
//! `src/report/testdata/runs` (the library's golden tests pin the
//! renderings; these pin the command: flags, files, exit codes).

use std::process::{Command, Output};

/// `drctl report ARGS` on the fixed journals of `src/report/testdata`.
pub(crate) fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args([
            "--color",
            "never",
            "--state-dir",
            "src/report/testdata",
            "report",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("drctl runs")
}

/// Standard output and error, for failure messages.
pub(crate) fn all(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn report_json_covers_the_window_and_names_the_tampered_journal() {
    let o = report(&[
        "--from",
        "2026-08-25",
        "--to",
        "2026-11-23T12:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["schema"], "drctl.report/v1");
    assert_eq!(j["summary"]["runs"], 6);
    let broken = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "broken_chain")
        .expect("a broken-chain finding");
    assert_eq!(broken["run"], "20260920T120000Z-payments-f006");
    // A window that holds none of the runs: no row, no invented figure.
    let o = report(&[
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-01",
        "--format",
        "json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["summary"]["runs"], 0, "{}", all(&o));
}

#[test]
fn report_junit_and_csv_are_written_whole_to_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (format, name) in [
        ("junit", "report.xml"),
        ("csv", "report.csv"),
        ("md", "report.md"),
    ] {
        let out = dir.path().join(name);
        let o = report(&[
            "--from",
            "2026-08-25",
            "--format",
            format,
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", all(&o));
        let text = std::fs::read_to_string(&out).expect("written");
        assert!(
            text.contains("20261117T030000Z-payments-c003"),
            "{format}: {text}"
        );
    }
    // Nothing but the three reports is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 3);
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).expect("xml");
    assert!(xml.starts_with("<?xml") && xml.contains("<testsuite name=\"payments\""));
}

#[test]
fn report_of_one_run_is_a_post_incident_draft() {
    let o = report(&["--run", "20261001T100000Z-payments-a001"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    for heading in [
        "## Milestones (UTC)",
        "## Timeline (UTC)",
        "## Actions taken",
        "## RTO and RPO against targets",
        "## Rollback scope",
        "## Root cause",
        "## Impact",
        "## Lessons learned",
    ] {
        assert!(md.contains(heading), "{heading} missing:\n{md}");
    }
}

#[test]
fn report_refuses_bad_input_with_exit_2() {
    for args in [
        &["--plan", "nosuch"][..],
        &["--from", "yesterday-ish"][..],
        &["--from", "2026-11-23", "--to", "2026-11-01"][..],
        &["--run", "20261001T100000Z-payments-a001", "--format", "csv"][..],
        &["--run", "no-such-run"][..],
    ] {
        let o = report(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", all(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("error"),
            "{args:?}"
        );
    }
}

/// The readiness matrix is drawn in the HTML report alone: asked for in
/// another format, it is refused with a hint (exit 2), before any read.
#[test]
fn readiness_outside_the_html_report_is_refused_with_a_hint() {
    for format in ["md", "json", "csv", "junit"] {
        let o = report(&["--format", format, "--readiness"]);
        let all = all(&o);
        assert_eq!(o.status.code(), Some(2), "{format}: {all}");
        assert!(
            all.contains("HTML report only") && all.contains("--format html"),
            "{all}"
        );
        assert!(o.stdout.is_empty(), "{format}: {all}");
    }
    // The post-incident report reads no cloud; a read timeout means
    // nothing without the readiness read.
    for args in [
        &["--run", "20260920T120000Z-payments-f006", "--readiness"][..],
        &["--format", "html", "--read-timeout", "2s"][..],
    ] {
        let o = report(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", all(&o));
        assert!(o.stdout.is_empty(), "{args:?}: {}", all(&o));
    }
}
