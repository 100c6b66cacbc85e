//! What a failover asks of the cloud, counted as HTTP requests at the wire
//! (waiter polls and retries included), through counting proxies in front
//! of the emulators. The goal is at most 14 AWS requests besides the
//! evidence writes for a one-plan failover; it makes 16 today (25 before),
//! and this test keeps it from growing again. What the last two are and
//! what would remove them: docs/performance.md.

use crate::fixture::{Fixture, Proxied};

/// Requests of a failover's own (not its evidence writes: the S3 objects,
/// the bucket lookup and the Object Lock read that precede them).
fn own(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|l| {
            !(l.starts_with("PUT /") || l.starts_with("HEAD /") || l.contains("/?object-lock "))
        })
        .cloned()
        .collect()
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
        "{} AWS requests besides the evidence writes (at most 16; goal 14):\n{}",
        own.len(),
        own.join("\n")
    );
}
