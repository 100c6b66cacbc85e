//! `[[check]]` against real HTTP servers on loopback: the probe adapter
//! (healthy, unhealthy, slow, refusing, a metadata address) and a failover
//! whose check fails, which must halt before the DNS switch with the
//! probe's answer (its status and length, never its body).

use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl::cloud::ErrorKind;

use crate::adapters::fake_server;
use crate::fixture::Fixture;
use crate::proxy::{Fault, FaultProxy, Match};
use crate::world::{self, STANDBY};

async fn server(status: u16, body: &'static str) -> String {
    fake_server(Arc::new(move |_req: &str| Some((status, body.to_string()))))
        .await
        .0
}

#[tokio::test]
async fn probe_reads_healthy_and_unhealthy_answers() {
    crate::needs_emulators!();
    let probe = world::clouds().await.probe;
    let ok = server(200, "ok").await;
    let a = probe
        .get(STANDBY, &format!("{ok}/healthz"), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!((a.status, a.body_bytes), (200, 2));
    for status in [500, 503] {
        let bad = server(status, "down for maintenance").await;
        let a = probe
            .get(STANDBY, &bad, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(a.status, status);
        assert_eq!(a.body_bytes, "down for maintenance".len() as u64);
    }
}

#[tokio::test]
async fn a_slow_probe_fails_at_its_timeout_naming_url_and_region() {
    crate::needs_emulators!();
    let probe = world::clouds().await.probe;
    let ok = server(200, "ok").await;
    let slow = FaultProxy::start(&ok).await;
    slow.inject(Match::Any, Fault::Delay(Duration::from_secs(120)), 10);
    let url = format!("{}/healthz", slow.url());
    let t0 = Instant::now();
    let e = probe
        .get(STANDBY, &url, Duration::from_millis(500))
        .await
        .unwrap_err();
    // Far below the 120 s the answer takes, with room for a busy machine.
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "bounded by the timeout: {:?}",
        t0.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!((&*e.resource, &*e.region), (url.as_str(), STANDBY));
}

#[tokio::test]
async fn a_refusing_probe_is_a_connection_error() {
    crate::needs_emulators!();
    let probe = world::clouds().await.probe;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let url = format!("http://{closed}/healthz");
    let e = probe
        .get(STANDBY, &url, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.message.to_lowercase().contains("refused"), "{e}");
}

/// Appends a `[[check]]` to the fixture's payments plan.
fn add_check(fx: &Fixture, home: &str, standby: &str) {
    let path = fx.plans.path().join("payments.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[[check]]\nid = \"api-health\"\nregions = {{ us-west-2 = \"{home}\", us-east-1 = \"{standby}\", eu-west-1 = \"{standby}\" }}\nexpect_status = 200\ntimeout = \"1s\"\n"
    ));
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_halts_before_the_dns_switch_with_the_probe_answer() {
    crate::needs_emulators!();
    let fx = Fixture::new("chkbad").await;
    let ok = server(200, "ok").await;
    let bad = server(503, "warming up").await;
    add_check(&fx, &format!("{ok}/healthz"), &format!("{bad}/healthz"));
    let before = fx.snapshot().await;
    let ran = fx
        .failover_payments(&["--step-timeout", "2s", "--output", "json"])
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let report = ran.json();
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let state = |id: &str| {
        steps
            .iter()
            .find(|s| s["step"].as_str().is_some_and(|x| x.contains(id)))
            .map(|s| s["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(state("/check:api-health"), "failed", "{report:#}");
    assert_eq!(
        state("/switch-dns:"),
        "not-run",
        "traffic did not move: {report:#}"
    );
    let err = steps
        .iter()
        .find_map(|s| s["error"].as_str())
        .unwrap_or_default();
    assert!(
        err.contains("HTTP 503, 10 bytes") && !err.contains("warming up"),
        "the probe's answer, not its body: {err}"
    );
    let after = fx.snapshot().await;
    assert_eq!(after.records, before.records, "no record changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_check_lets_the_failover_through_and_shows_in_the_dry_run() {
    crate::needs_emulators!();
    let fx = Fixture::new("chkok").await;
    let ok = server(200, "ok").await;
    add_check(&fx, &format!("{ok}/healthz"), &format!("{ok}/healthz"));
    let dry = fx.failover_payments(&["--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.all());
    assert!(
        dry.out.contains("check:api-health") && dry.out.contains("http:GET"),
        "{}",
        dry.out
    );
    let ran = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(ran.json()["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_standby_check_as_preflight_would_find_it() {
    crate::needs_emulators!();
    let fx = Fixture::new("chkst").await;
    let ok = server(200, "ok").await;
    let bad = server(503, "warming up").await;
    add_check(&fx, &format!("{ok}/healthz"), &format!("{bad}/healthz"));
    let ran = fx
        .drctl(&["status", "--plan", "payments", "--output", "json"])
        .await;
    let report = ran.json();
    let standby = report["plans"][0]["regions"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["region"] == STANDBY).cloned())
        .unwrap_or_default();
    let check = &standby["checks"][0];
    assert_eq!(check["resource"], "check api-health", "{standby:#}");
    assert!(
        check["state"]
            .as_str()
            .is_some_and(|s| s.contains("HTTP 503")),
        "{standby:#}"
    );
}

/// Every file under `dir`, with its text (journals, late facts, locks).
fn all_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

/// Regression: a failed `[[check]]` copied its response body into the
/// step's error, and from there into the journal, every report, every
/// notification and the terminal (a check against the instance metadata
/// address reflected the host's credentials). A check answering 500 with
/// a marker in its body: the marker is in none of them; the status and
/// the length are. Under `-v` the body's start is shown on the terminal,
/// its escape sequences removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_failed_checks_body_reached_journals_reports_notifications_and_the_terminal() {
    crate::needs_emulators!();
    let fx = Fixture::new("chkbody").await;
    let marker = format!("SECRET-MARKER-{}", fx.suffix);
    let body: &'static str = Box::leak(
        format!("{{\"AccessKeyId\":\"{marker}\"}}\u{1b}]0;owned\u{7}\u{1b}[2J").into_boxed_str(),
    );
    let ok = server(200, "ok").await;
    let bad = server(500, body).await;
    add_check(&fx, &format!("{ok}/healthz"), &format!("{bad}/healthz"));

    // A webhook and a Slack sink, both to a local receiver that keeps
    // every request it is sent.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let keep = seen.clone();
    let (sink, _) = fake_server(Arc::new(move |req: &str| {
        keep.lock().unwrap().push(req.to_string());
        Some((200, "ok".to_string()))
    }))
    .await;
    let cfg = tempfile::tempdir().unwrap();
    let config = cfg.path().join("drctl.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{sink}/hook\"\n\n[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{sink}/slack\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let drctl = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        let fx = &fx;
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            fx.drctl_with(&args, &[], &crate::world::endpoints_file())
                .await
        }
    };

    let before = fx.runs();
    let ran = drctl(&[
        "failover",
        "--plan",
        "payments",
        "--to",
        STANDBY,
        "--approve",
        "integration test",
        "--step-timeout",
        "2s",
    ])
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let run = fx.new_run(&before);
    let mut terminal = vec![("failover".to_string(), ran.out.clone() + &ran.err)];
    assert!(
        ran.err.contains("HTTP 500, ") || ran.out.contains("HTTP 500, "),
        "the status and length are told: {}",
        ran.all()
    );

    // Every notification the run owed is delivered (one attempt each).
    world::wait_for(
        "the run.finished event at the receiver",
        world::PATIENCE,
        async || {
            let got = seen.lock().unwrap().clone();
            if got.iter().any(|r| r.contains("dev.drctl.run.finished")) {
                return Ok(());
            }
            Err(format!("{got:#?}"))
        },
    )
    .await;
    let payloads = seen.lock().unwrap().clone();
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("step_failed") && p.contains("HTTP 500")),
        "a step_failed event names the status: {payloads:#?}"
    );
    assert!(payloads.iter().any(|p| p.starts_with("POST /slack")));
    for p in &payloads {
        assert!(!p.contains(&marker), "a notification carries the body: {p}");
    }

    // The journal and everything beside it in the state.
    assert!(!fx.journal_text(&run).await.contains(&marker), "journal");
    let mut files = Vec::new();
    all_files(fx.state_dir(), &mut files);
    for (path, text) in &files {
        assert!(!text.contains(&marker), "{} holds the body", path.display());
    }

    // Every report format, the post-incident report, runs show.
    for format in ["md", "json", "csv", "junit", "html"] {
        let r = drctl(&["report", "--format", format]).await;
        assert_eq!(r.code, Some(0), "{format}: {}", r.all());
        assert!(r.out.contains(&run), "{format}: the run is in the report");
        terminal.push((format!("report {format}"), r.out + &r.err));
    }
    let incident = drctl(&["report", "--run", &run]).await;
    assert!(incident.out.contains("HTTP 500"), "{}", incident.all());
    terminal.push(("report --run".into(), incident.out + &incident.err));
    for output in ["text", "json"] {
        let show = drctl(&["runs", "show", &run, "--output", output]).await;
        terminal.push((format!("runs show {output}"), show.out + &show.err));
    }
    let status = drctl(&["status", "--plan", "payments"]).await;
    terminal.push(("status".into(), status.out + &status.err));
    for (what, text) in &terminal {
        assert!(!text.contains(&marker), "{what} shows the body:\n{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{what}: {text:?}"
        );
    }

    // Under -v the body's start is on the terminal, cleaned.
    let verbose = drctl(&["-v", "status", "--plan", "payments"]).await;
    let shown = verbose.out + &verbose.err;
    assert!(shown.contains(&marker), "-v shows the body: {shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
}

/// A check against the instance metadata address is refused at once (it
/// would never pass), naming why, before traffic moves; nothing is sent
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_check_against_the_metadata_address_is_refused() {
    crate::needs_emulators!();
    let fx = Fixture::new("chkmeta").await;
    let ok = server(200, "ok").await;
    add_check(
        &fx,
        &format!("{ok}/healthz"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    );
    let before = fx.snapshot().await;
    let t0 = Instant::now();
    let ran = fx
        .failover_payments(&["--step-timeout", "60s", "--output", "json"])
        .await;
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(
        t0.elapsed() < Duration::from_secs(45),
        "refused at once, not retried for the step's budget: {:?}",
        t0.elapsed()
    );
    let all = ran.all();
    assert!(
        all.contains("169.254.169.254") && all.contains("allow_link_local"),
        "{all}"
    );
    let after = fx.snapshot().await;
    assert_eq!(after.records, before.records, "traffic did not move");
}
