//! What a failover asks of the cloud, counted as HTTP requests at the wire
//! (waiter polls and retries included), through counting proxies in front
//! of the emulators. A one-plan failover sends at most 15 AWS requests
//! besides the evidence writes and their reads back (the side read of the old region, the
//! target copy's pending maintenance and the evidence bucket's Object Lock
//! read included): 15 measured on 2026-11-29, with the protections gate's
//! read of the zone's record-set protections (preflight uses the zone the
//! gate found, so it costs one request); 14 before preflight read the
//! maintenance AWS will apply to the replica it promotes, 18 before the promotion took
//! its own answer, the scale step preflight's read and the Object Lock
//! read stopped needing a HeadBucket (25 before that). The list, request
//! by request: docs/performance.md.

use crate::fixture::{Fixture, Proxied};

/// Requests of a failover's own (not its evidence writes: the S3 objects,
/// the bucket lookup and the Object Lock read that precede them, and each
/// object's read back after it is written).
fn own(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|l| {
            !(l.starts_with("PUT /")
                || l.starts_with("HEAD /")
                || l.contains("/?object-lock ")
                || read_back(l))
        })
        .cloned()
        .collect()
}

/// Whether a request is an evidence object's read back after its write
/// (a `GetObject` in the plan's evidence bucket).
fn read_back(line: &str) -> bool {
    line.starts_with("GET /drctl-evidence")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_plan_failover_makes_at_most_16_aws_requests_besides_evidence() {
    crate::needs_emulators!();
    let fx = Fixture::new("calls").await;
    let proxied = Proxied::start(false).await;
    let ran = fx.failover_payments_via(&proxied.endpoints(), &[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let log = proxied.log();
    let own = own(&log);
    eprintln!(
        "{} requests ({} besides evidence):\n{}",
        log.len(),
        own.len(),
        log.join("\n")
    );
    assert!(
        own.len() <= 16,
        "{} AWS requests besides the evidence writes (at most 16; goal 15):\n{}",
        own.len(),
        own.join("\n")
    );
}

/// Regression: a one-plan failover sent 18 requests besides the evidence
/// writes (the promotion described its instance before and after the call,
/// the scale step read its group again after preflight, and the evidence
/// bucket was located by a HeadBucket before its Object Lock read). One
/// request more since: preflight's read of the maintenance pending on the
/// replica the run promotes (issue 40).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_plan_failover_sends_at_most_15_requests_besides_the_evidence_writes() {
    crate::needs_emulators!();
    let fx = Fixture::new("calls14").await;
    let proxied = Proxied::start(false).await;
    let ran = fx.failover_payments_via(&proxied.endpoints(), &[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let besides_writes: Vec<String> = proxied
        .log()
        .into_iter()
        .filter(|l| !l.starts_with("PUT /") && !read_back(l))
        .collect();
    assert!(
        besides_writes.len() <= 15,
        "{} requests besides the evidence writes (at most 15):\n{}",
        besides_writes.len(),
        besides_writes.join("\n")
    );
}
