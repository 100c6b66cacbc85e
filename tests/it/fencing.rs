//! Stale actors cannot write (issue 17, section 3; issue 28, fence at the
//! wire), against the emulators.
//!
//! Machine A is a drctl process on shared state (S3) whose every request
//! goes through its own counting proxies. It is stopped (SIGSTOP) while it
//! waits for the answer of its last request before a cloud write: the
//! records read of `switch-dns`; or the fence's own read of the plan's
//! lease right before a promotion (and its tag), a scaling or a record
//! change, whose answer says "ours"; or the answer of a first Route 53
//! change while another plan's change waits in the run's queue behind it.
//! While it sleeps its lease expires and machine B, through other proxies,
//! resumes the run and finishes it. Then A gets SIGCONT. Whatever A checked
//! before it slept, each write is asked again right before it is sent
//! (`drctl::cloud::wire`): A exits 1 saying the lease was lost, and its
//! proxies see no cloud write after B took over.
//!
//! A's lease is short here, as in `state.rs`: `DRCTL_LEASE=15s`,
//! `DRCTL_LEASE_SKEW=1s`; B keeps drctl's own length (same skew).

use crate::world::{Asg, AsgCalls};
use std::process::Stdio;
use std::time::Duration;

use drctl::cloud::{DnsChange, DnsRecord, ErrorKind};

use crate::fixture::{Fixture, IT_STATE_BUCKET, Proxied, read_only};
use crate::proxy::{Fault, Gate, Match};
use crate::world::{self, STANDBY};

/// A's lease (see `state.rs`: short, so that expiry takes seconds; long
/// enough that renewals slowed by a busy machine keep it until A is
/// stopped: at 6 s, a suite run six tests at a time saw LocalStack's S3
/// answer a renewal too late and A give the lease up before its step).
const LEASE: Duration = Duration::from_secs(15);
const SKEW: Duration = Duration::from_secs(1);
/// How long after a holder's last renewal its lease is certainly expired
/// for another machine: the lease and the skew, plus the store's times
/// (`Last-Modified`, `Date`), whole seconds each and rounded so that a
/// lease never ends early (up to 2 s later than the holder's own clock
/// says), plus a margin. A takeover 0.5 s after lease + skew failed now and
/// then once expiry was judged by the store's clock.
const EXPIRED: Duration = LEASE
    .saturating_add(SKEW)
    .saturating_add(Duration::from_millis(2_500));

fn machine(name: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("DRCTL_HOST", name),
        ("DRCTL_LEASE", "15s"),
        ("DRCTL_LEASE_SKEW", "1s"),
    ]
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid` with kill(1); a
/// `STOP` returns once the process is stopped (its state in
/// `/proc/PID/stat` is `T`), so that what the test lets through next
/// reaches a stopped process.
async fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
    if signal != "STOP" {
        return;
    }
    let stat = format!("/proc/{pid}/stat");
    if !std::path::Path::new(&stat).exists() {
        return; // no procfs: kill(2) has sent it, that is all one can know
    }
    world::wait_for_every(
        &format!("process {pid} to be stopped"),
        world::PATIENCE,
        Duration::from_millis(1),
        async || {
            let text = std::fs::read_to_string(&stat).map_err(|e| format!("{stat}: {e}"))?;
            // `pid (comm) STATE ...`: the state follows the last `)`.
            let state = text.rsplit(')').next().unwrap_or_default().trim_start();
            if state.starts_with('T') || state.starts_with('t') {
                return Ok(());
            }
            Err(text)
        },
    )
    .await;
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
    // but the answer reaches A late: it is held until A is stopped.
    let route53 = a_proxies.proxy_for("AWS_ENDPOINT_URL_ROUTE_53");
    let read = Match::PathContains("/rrset?".into());
    let answer = Gate::new();
    route53.inject(read.clone(), Fault::HoldAnswer(answer.clone()), 1);
    let mut a = spawn_a(&fx, &a_proxies, &["payments"], STANDBY, &[]);
    let pid = a.id().expect("A's pid");
    seen(&mut a, route53, &read, 1, "read the records").await;
    signal(pid, "STOP").await;
    answer.open();
    let run = fx.runs().into_iter().next().expect("A's run");
    let promote = fx.step("promote");
    let switch = fx.step("switch-dns");
    let before = fx.journal_text(&run).await;
    assert!(
        before.contains(&format!("\"step_succeeded\",\"step\":\"{promote}\""))
            && before.contains(&format!("\"step_started\",\"step\":\"{switch}\"")),
        "A was not stopped inside switch-dns, after promotion:\n{before}"
    );

    // A sleeps through its lease; B takes the run over and finishes it;
    // A wakes up with its stale read of the records.
    takeover_while_stopped(&fx, a, pid, &a_proxies, &["/rrset"]).await;

    // The world is B's: failed over.
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap).await.unwrap();
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

/// Machine A: `drctl failover --to target [--plan P] --approve FLAGS` on
/// the fixture's shared state, through `proxies`, with short leases.
fn spawn_a(
    fx: &Fixture,
    proxies: &Proxied,
    plans: &[&str],
    target: &str,
    flags: &[&str],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(proxies.endpoints())
        .arg("--state")
        .arg(fx.shared.as_deref().expect("shared state"))
        .envs(crate::world::run_key_env())
        .args(["failover", "--to", target]);
    for p in plans {
        cmd.args(["--plan", p]);
    }
    cmd.args(["--approve", "fence test"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in machine("machine-a") {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn machine A")
}

/// Waits (polling every 2 ms) until `proxy` has seen `n` requests of `m`
/// from A (which must not end first).
async fn seen(
    a: &mut tokio::process::Child,
    proxy: &crate::proxy::FaultProxy,
    m: &Match,
    n: usize,
    what: &str,
) {
    world::wait_for_every(
        &format!("machine A to have {what}"),
        world::PATIENCE,
        Duration::from_millis(2),
        async || {
            if proxy.requests(m.clone()) >= n {
                return Ok(());
            }
            world::running(a, "machine A", what).await;
            Err(proxy.log().join("\n"))
        },
    )
    .await;
}

/// A is stopped (`pid`) and has not sent any of `writes`: it sleeps through
/// its lease, machine B resumes the run through other proxies and finishes
/// it (sending each of `writes`), then A is continued. Asserts that A ends
/// saying its lease was lost and that none of its requests after the
/// takeover was a cloud write; the journal is B's after its resume and
/// verifies.
async fn takeover_while_stopped(
    fx: &Fixture,
    a: tokio::process::Child,
    pid: u32,
    a_proxies: &Proxied,
    writes: &[&str],
) -> Vec<String> {
    let sent = cloud_writes(&a_proxies.log());
    for w in writes {
        assert!(
            !sent.iter().any(|l| l.contains(w)),
            "A had already sent {w} when stopped:\n{}",
            sent.join("\n")
        );
    }
    tokio::time::sleep(EXPIRED).await;
    let takeover: Vec<usize> = a_proxies.proxies.iter().map(|p| p.log().len()).collect();
    let run = fx.runs().into_iter().next().expect("A's run");
    let b_proxies = Proxied::start(false).await;
    let b = fx
        .drctl_with(
            &["runs", "resume", &run],
            &crate::state::steady("machine-b"),
            &b_proxies.endpoints(),
        )
        .await;
    assert_eq!(b.code, Some(0), "{}", b.all());
    let b_writes = cloud_writes(&b_proxies.log());
    for w in writes {
        assert!(
            b_writes.iter().any(|l| l.contains(w)),
            "B sent {w}: {b_writes:#?}"
        );
    }

    signal(pid, "CONT").await;
    let out = tokio::time::timeout(world::PATIENCE, a.wait_with_output())
        .await
        .expect("A ends by itself")
        .expect("A's output");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("machine A said:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Whichever comes first when it wakes: a write refused (the step's
    // check or the wire's), or the journal refusing a record.
    assert!(
        (err.contains("lease lost") && err.contains("made no change"))
            || err.contains("refusing to write to the journal"),
        "{err}"
    );
    let after: Vec<String> = a_proxies
        .proxies
        .iter()
        .zip(&takeover)
        .flat_map(|(p, at)| p.log().into_iter().skip(*at))
        .collect();
    let late = cloud_writes(&after);
    assert!(
        late.is_empty(),
        "A wrote after B took over: {late:#?}\nall of A's requests since:\n{}",
        after.join("\n")
    );
    let text = fx.journal_text(&run).await;
    crate::state::only_the_resumer_wrote_after_its_resume(&text);
    let audit = fx.audit(&run).await;
    assert_eq!(audit.code, Some(0), "{}", audit.all());
    b_writes
}

/// A fails over `plan` to `target` one step at a time and is stopped
/// inside `step` while the fence's own read of the plan's lease, right
/// before the step's first write, waits for its answer: whatever that read
/// then says, the write is asked again right before it is sent (and
/// refused).
async fn paused_at_the_fence_of(
    fx: &Fixture,
    (plan, target): (&str, &str),
    step: &str,
    writes: &[&str],
) {
    let a_proxies = Proxied::start(false).await;
    let s3 = a_proxies.proxy_for("AWS_ENDPOINT_URL_S3");
    // The journal append that starts the step is answered once the test
    // holds the next read of the lease, whose answer A gets once stopped.
    let started = Match::BodyContains(format!("\"step_started\",\"step\":\"{step}\""));
    let appended = Gate::new();
    s3.inject(started.clone(), Fault::HoldAnswer(appended.clone()), 1);
    let mut a = spawn_a(fx, &a_proxies, &[plan], target, &["--parallelism", "1"]);
    let pid = a.id().expect("A's pid");
    seen(&mut a, s3, &started, 1, &format!("started {step}")).await;
    let lease = Match::MethodPath("GET", format!("locks/{plan}.json"));
    let before = s3.requests(lease.clone());
    let read = Gate::new();
    s3.inject(lease.clone(), Fault::HoldAnswer(read.clone()), 1);
    appended.open();
    seen(&mut a, s3, &lease, before + 1, "read its lease").await;
    signal(pid, "STOP").await;
    read.open();
    takeover_while_stopped(fx, a, pid, &a_proxies, writes).await;
}

/// [`paused_at_the_fence_of`] a step of payments failing over to us-east-1.
async fn payments_paused_at_the_fence_of(fx: &Fixture, step: &str, writes: &[&str]) {
    paused_at_the_fence_of(fx, ("payments", STANDBY), step, writes).await;
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_between_its_lease_check_and_a_promotion_a_machine_promotes_and_tags_nothing() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fencepr", Some("s3")).await;
    let step = fx.step("promote");
    payments_paused_at_the_fence_of(&fx, &step, &["PromoteReadReplica", "AddTagsToResource"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_between_its_lease_check_and_a_scaling_a_machine_scales_nothing() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fencesc", Some("s3")).await;
    let step = fx.step("raise:payments-api");
    payments_paused_at_the_fence_of(&fx, &step, &["UpdateAutoScalingGroup"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_between_its_lease_check_and_a_record_change_a_machine_changes_no_record() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fencerc", Some("s3")).await;
    let step = fx.step("switch-dns");
    payments_paused_at_the_fence_of(&fx, &step, &["/rrset"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_with_a_queued_route53_batch_a_machine_sends_none_of_it() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fenceqb", Some("s3")).await;
    // payments and ledger switch records in the same zone, in one run. The
    // first change's answer is held: it is in flight (sent before any
    // takeover), and the other plan's change queues behind it in the run's
    // Route 53 queue. A is stopped then, and the answer let through. When
    // A wakes and gets the first answer, the queue asks the other plan's
    // lease again before sending its batch: nothing more goes.
    let a_proxies = Proxied::start(false).await;
    let route53 = a_proxies.proxy_for("AWS_ENDPOINT_URL_ROUTE_53");
    let s3 = a_proxies.proxy_for("AWS_ENDPOINT_URL_S3");
    let change = Match::MethodPath("POST", "/rrset".into());
    let first_answer = Gate::new();
    route53.inject(change.clone(), Fault::HoldAnswer(first_answer.clone()), 1);
    // No --plan: every plan that has the target region (payments, ledger).
    // (ledger's replica is seeded 20 minutes behind, above its RPO.)
    let mut a = spawn_a(
        &fx,
        &a_proxies,
        &[],
        STANDBY,
        &["--accept-data-loss", "30m"],
    );
    let pid = a.id().expect("A's pid");
    seen(&mut a, route53, &change, 1, "sent its first change").await;
    // Both plans' switches start (journaled, each append waited on); the
    // second reads its records, then the fence reads its plan's lease, and
    // with that answer it joins the queue (no request of its own until the
    // queue's turn comes). A is stopped once both plans' fence reads are
    // answered: at worst the second is stopped between that answer and its
    // joining, and its wire fence (checked before every send) refuses it
    // just the same when A wakes.
    let fence_read = |p: &str| {
        let started = Match::BodyContains(format!(
            "\"step_started\",\"step\":\"{p}/switch-dns:{}\"",
            fx.zone
        ));
        let at = s3.first(started)?;
        let lease = Match::MethodPath("GET", format!("locks/{p}.json"));
        (s3.answered_since(at + 1, lease) > 0).then_some(())
    };
    world::wait_for_every(
        "both plans' switches to have read their lease before joining the queue",
        world::PATIENCE,
        Duration::from_millis(2),
        async || {
            let waiting: Vec<&str> = (["payments", "ledger"].into_iter())
                .filter(|p| fence_read(p).is_none())
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            world::running(&mut a, "machine A", "both switches read their lease").await;
            Err(format!(
                "no answered read of the lease after the start of the switch of {waiting:?}; S3 saw:\n{}",
                s3.log().join("\n")
            ))
        },
    )
    .await;
    signal(pid, "STOP").await;
    assert_eq!(
        route53.requests(change.clone()),
        1,
        "the second change waited in the queue"
    );
    first_answer.open();
    // (A sent the first change before it was stopped: it is not among the
    // writes A must not have made; the queued one is B's to send.)
    let b_writes = takeover_while_stopped(&fx, a, pid, &a_proxies, &[]).await;
    assert!(
        b_writes
            .iter()
            .any(|l| l.starts_with("POST ") && l.contains("/rrset")),
        "B sent the change A had queued: {b_writes:#?}"
    );
    let snap = fx.snapshot().await;
    let db = |id: &str| snap.databases[&fx.id(id)].clone();
    assert!(db("payments-db-use1").starts_with("primary"), "{snap:?}");
    assert!(db("ledger-db-use1").starts_with("primary"), "{snap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_interceptor_refuses_writes_whose_lease_is_gone_and_lets_reads_through() {
    use drctl::cloud::wire::WireFence;
    use drctl::cloud::{Capacity, ObjectUrl, PutMode};
    crate::needs_emulators!();
    let fx = Fixture::with_state("wire", Some("s3")).await;
    let clouds = world::clouds().await;
    let group = fx.id("payments-api-use1");
    let gone = || WireFence::new(|| Err("the lock of plan payments was taken over".to_string()));
    // A read goes through the SDK (and its interceptor) untouched.
    let before = gone()
        .guard(clouds.asg().describe_group(STANDBY, &group))
        .await
        .expect("a read is not fenced")
        .expect("the group exists");
    // A write is refused before it is sent: the emulator never sees it.
    let e = gone()
        .guard(clouds.asg().set_capacity(
            STANDBY,
            &group,
            Capacity {
                min: 7,
                desired: 7,
                max: 9,
            },
        ))
        .await
        .expect_err("fenced at the wire");
    assert_eq!(e.kind, ErrorKind::Fenced, "{e}");
    assert!(e.to_string().contains("taken over"), "{e}");
    let after = clouds
        .asg()
        .describe_group(STANDBY, &group)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.capacity, before.capacity);
    let e = gone()
        .guard(
            clouds
                .database
                .promote_replica(STANDBY, &fx.id("payments-db-use1")),
        )
        .await
        .expect_err("fenced at the wire");
    assert_eq!(e.kind, ErrorKind::Fenced, "{e}");
    let url = ObjectUrl::parse(&format!(
        "{}/wire-{}.json",
        fx.shared.as_deref().expect("state"),
        fx.suffix
    ))
    .unwrap();
    let e = gone()
        .guard(
            clouds
                .objects
                .put(STANDBY, &url, "{}".into(), PutMode::Overwrite),
        )
        .await
        .expect_err("fenced at the wire");
    assert_eq!(e.kind, ErrorKind::Fenced, "{e}");
    assert!(clouds.objects.get(STANDBY, &url).await.unwrap().is_none());
    // Outside a fence (or under one that holds) the same write goes.
    WireFence::new(|| Ok(()))
        .guard(
            clouds
                .objects
                .put(STANDBY, &url, "{}".into(), PutMode::Overwrite),
        )
        .await
        .expect("sent");
    assert!(clouds.objects.get(STANDBY, &url).await.unwrap().is_some());
    let snap = fx.snapshot().await;
    assert!(snap.databases[&fx.id("payments-db-use1")].starts_with("replica"));
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_between_its_lease_check_and_a_control_write_a_machine_writes_no_control() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("fencecw", Some("s3")).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "checkout.toml", &fx.suffix);
    let prep = fx.drctl(&["dns", "prepare", "--plan", "checkout"]).await;
    assert_eq!(prep.code, Some(0), "{}", prep.all());
    // checkout's data-plane switch writes each region's control object
    // (S3, conditional on the version read); A is stopped at the fence's
    // read of the lease right before those writes.
    paused_at_the_fence_of(
        &fx,
        ("checkout", world::HOME),
        "checkout/switch-control",
        &["PUT /drctl-control-"],
    )
    .await;
}
