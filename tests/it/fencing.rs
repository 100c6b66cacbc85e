//! Stale actors cannot write (issue 17, section 3), against the emulators.
//!
//! Machine A is a drctl process on shared state (S3) whose every request
//! goes through its own counting proxies. It is stopped (SIGSTOP) inside
//! `switch-dns`, after promotion, between its read of the records and its
//! change batch: the read reached Route 53 (LocalStack) and its answer is
//! held at A's proxy, so A wakes up with a stale view. While it sleeps its
//! lease expires and machine B, through other proxies, resumes the run and
//! finishes it. Then A gets SIGCONT. Its fence check refuses the change
//! batch: A exits non-zero saying the lease was lost, and its proxies see
//! no cloud write after B took over. (Promotion itself cannot be the pause
//! point: on its first attempt it acts on preflight's read of moments ago,
//! so no request lies between its fence check and its call.)
//!
//! Leases are short here, as in `state.rs`: `DRCTL_LEASE=3s`,
//! `DRCTL_LEASE_SKEW=1s`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use drctl::cloud::{DnsChange, DnsRecord, ErrorKind};

use crate::fixture::{Fixture, IT_STATE_BUCKET, Proxied, read_only};
use crate::proxy::{Fault, Match};
use crate::world::{self, STANDBY};

const LEASE: Duration = Duration::from_secs(3);
const SKEW: Duration = Duration::from_secs(1);

fn machine(name: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("DRCTL_HOST", name),
        ("DRCTL_LEASE", "3s"),
        ("DRCTL_LEASE_SKEW", "1s"),
    ]
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid` with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// The cloud writes among proxy log lines: not reads, and not the state
/// bucket (its lease and journal writes are conditional: the store itself
/// refuses a stale one, which is what the journal's fencing rests on).
fn cloud_writes(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !read_only(l) && !l.contains(&format!("/{IT_STATE_BUCKET}/")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_paused_past_its_lease_makes_no_cloud_write_after_the_takeover() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fence", Some("s3")).await;
    let a_proxies = Proxied::start(false).await;
    // A's read of the zone's records (switch-dns) is answered as of now,
    // but the answer reaches A late: A is stopped meanwhile.
    let route53 = a_proxies.proxy_for("AWS_ENDPOINT_URL_ROUTE_53");
    let read = Match::PathContains("/rrset?".into());
    route53.inject(read.clone(), Fault::DelayAnswer(Duration::from_secs(2)), 1);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(a_proxies.endpoints())
        .arg("--state")
        .arg(fx.shared.as_deref().expect("shared state"))
        .args([
            "failover",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--approve",
            "fence test",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in machine("machine-a") {
        cmd.env(k, v);
    }
    let a = cmd.spawn().expect("spawn machine A");
    let pid = a.id().expect("A's pid");
    let t0 = Instant::now();
    while route53.requests(read.clone()) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "A never read the records:\n{}",
            a_proxies.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(pid, "STOP");
    let run = fx.runs().into_iter().next().expect("A's run");
    let promote = fx.step("promote");
    let switch = fx.step("switch-dns");
    let before = fx.journal_text(&run).await;
    assert!(
        before.contains(&format!("\"step_succeeded\",\"step\":\"{promote}\""))
            && before.contains(&format!("\"step_started\",\"step\":\"{switch}\"")),
        "A was not stopped inside switch-dns, after promotion:\n{before}"
    );

    // A sleeps through its lease; B takes the run over and finishes it.
    tokio::time::sleep(LEASE + SKEW + Duration::from_millis(500)).await;
    // Where each of A's proxies' logs stood at the takeover.
    let takeover: Vec<usize> = a_proxies.proxies.iter().map(|p| p.log().len()).collect();
    let b_proxies = Proxied::start(false).await;
    let b = fx
        .drctl_with(
            &["runs", "resume", &run],
            &machine("machine-b"),
            &b_proxies.endpoints(),
        )
        .await;
    assert_eq!(b.code, Some(0), "{}", b.all());
    let b_writes = cloud_writes(&b_proxies.log());
    assert!(
        b_writes.iter().any(|l| l.contains("/rrset")),
        "B switched the records: {b_writes:#?}"
    );

    // A wakes up with its stale read of the records.
    signal(pid, "CONT");
    let out = tokio::time::timeout(Duration::from_secs(60), a.wait_with_output())
        .await
        .expect("A ends by itself")
        .expect("A's output");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("machine A said:\n{err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lease lost"), "{err}");
    assert!(err.contains("made no change"), "{err}");
    let after: Vec<String> = a_proxies
        .proxies
        .iter()
        .zip(&takeover)
        .flat_map(|(p, at)| p.log().into_iter().skip(*at))
        .collect();
    let writes = cloud_writes(&after);
    assert!(
        writes.is_empty(),
        "A wrote after B took over: {writes:#?}\nall of A's requests since:\n{}",
        after.join("\n")
    );

    // The world is B's: failed over, and every record after B's `resumed`
    // carries B's token.
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap).await.unwrap();
    let text = fx.journal_text(&run).await;
    crate::state::only_the_resumer_wrote_after_its_resume(&text);
    let audit = fx.audit(&run).await;
    assert_eq!(audit.code, Some(0), "{}", audit.all());
}

fn cname(name: &str, value: &str) -> DnsRecord {
    DnsRecord::simple(name.into(), "CNAME", Some(60), vec![value.into()])
}

/// Two writers read the same record; the first swaps it; the second swaps
/// from its old read. On AWS the second batch is refused whole
/// (`InvalidChangeBatch`); the fake does the same (`steps::fencing_tests`).
/// LocalStack 4.13.1 does not: it accepts a DELETE whose values match any
/// value the set has had, so the stale swap goes through. This pins that
/// quirk (localstack/README.md), so that an emulator that fixes it is
/// noticed, and checks the part it does emulate: a DELETE of values the set
/// never had is refused, and nothing of its batch is applied.
#[tokio::test(flavor = "multi_thread")]
async fn localstack_refuses_a_delete_of_values_never_held_but_accepts_a_stale_swap() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let name = format!("{}.example.com.", world::unique("cas"));
    world::sdk()
        .await
        .route53()
        .create_hosted_zone()
        .name(&name)
        .caller_reference(world::unique("cas-ref"))
        .send()
        .await
        .expect("create zone");
    let zone = clouds
        .dns
        .find_zone(&name)
        .await
        .expect("find zone")
        .expect("zone");
    let host = format!("api.{name}");
    let home = cname(&host, "api-home.example.net.");
    clouds
        .dns
        .apply_changes(&zone, &DnsChange::swap(None, &home), "seed")
        .await
        .expect("create");
    let read = || async {
        clouds
            .dns
            .read_records(&zone, &host, "CNAME")
            .await
            .expect("read")
            .into_iter()
            .next()
    };
    // A swap from values the set never had: refused whole, nothing applied.
    let never = cname(&host, "api-never.example.net.");
    let other = cname(&format!("other.{name}"), "x.example.net.");
    let mut batch = vec![DnsChange::Create(other.clone())];
    batch.extend(DnsChange::swap(
        Some(&never),
        &cname(&host, "api-x.example.net."),
    ));
    let e = clouds
        .dns
        .apply_changes(&zone, &batch, "from values never held")
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Client, "{e}");
    eprintln!(
        "LocalStack answered a DELETE of values never held: {:?} {}",
        e.code, e.message
    );
    assert_eq!(read().await.as_ref(), Some(&home));
    assert!(
        clouds
            .dns
            .read_records(&zone, &other.name, "CNAME")
            .await
            .expect("read")
            .is_empty(),
        "a refused batch applied its CREATE"
    );

    // Two writers read `home`; the first swaps it.
    let (first_read, second_read) = (read().await, read().await);
    let first = cname(&host, "api-first.example.net.");
    clouds
        .dns
        .apply_changes(
            &zone,
            &DnsChange::swap(first_read.as_ref(), &first),
            "first",
        )
        .await
        .expect("the first writer's swap");
    // The second, from its old read: AWS refuses it; LocalStack 4.13.1 takes it.
    let second = cname(&host, "api-second.example.net.");
    let stale = clouds
        .dns
        .apply_changes(
            &zone,
            &DnsChange::swap(second_read.as_ref(), &second),
            "stale",
        )
        .await;
    assert!(
        stale.is_ok(),
        "LocalStack now refuses a stale swap ({stale:?}): make this test assert the refusal, and update localstack/README.md"
    );
    assert_eq!(read().await.as_ref(), Some(&second));
}
