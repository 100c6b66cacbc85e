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
    slow.inject(Match::Any, Fault::Delay(Duration::from_secs(5)), 10);
    let url = format!("{}/healthz", slow.url());
    let t0 = Instant::now();
    let e = probe
        .get(STANDBY, &url, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "bounded by the timeout: {:?}",
        t0.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(
        (e.resource.as_str(), e.region.as_str()),
        (url.as_str(), STANDBY)
    );
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
