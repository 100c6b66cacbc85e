//! Shared state against the emulators (docs/state.md): journals and plan
//! leases on S3 (LocalStack) and GCS (fake-gcs-server).
//!
//! "Machines" are drctl processes with different `DRCTL_HOST` names: a
//! holder on another host is never judged dead by its pid, only by its
//! lease. A lease the test waits out is short here (`DRCTL_LEASE=6s`,
//! `DRCTL_LEASE_SKEW=1s`) so that expiry takes seconds; every other
//! machine keeps drctl's own length (with the same skew), so that a
//! renewal slowed by a busy machine never ends a lease the test needs.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl::cloud::ObjectUrl;
use drctl::journal::{Event, Journal, JournalError, JournalStore, RunKind};
use drctl::state::clock::TokioClock;
use drctl::state::lease::LeaseLocks;
use drctl::state::objects::ObjectJournalStore;
use drctl::state::{Holder, LeaseTimes, LockError, LockStore, Takeover};
use serde_json::Value;

use crate::fixture::{Fixture, Proxied, Ran};
use crate::proxy::{Fault, Match};
use crate::world::{self, STANDBY};

/// The lease of a machine whose lease the test waits out: short, so that
/// expiry takes seconds, and long enough that its renewals (a third of it
/// apart, each a write to the bucket that must be answered within two
/// thirds less the skew) keep it while the suite loads a slow machine.
const LEASE: Duration = Duration::from_secs(6);
const SKEW: Duration = Duration::from_secs(1);
/// How long after a holder's last renewal its lease is certainly expired
/// for another machine: the lease and the skew, plus the store's times
/// (`Last-Modified`, `Date`), whole seconds each and rounded so that a
/// lease never ends early (up to 2 s later than the holder's own clock
/// says), plus a margin. A takeover 0.5 s after lease + skew failed now and
/// then once expiry was judged by the store's clock.
const EXPIRED: Duration = expired(LEASE);

const fn expired(lease: Duration) -> Duration {
    lease
        .saturating_add(SKEW)
        .saturating_add(Duration::from_millis(2_500))
}

/// A machine whose lease the test waits out ([`LEASE`], [`SKEW`]).
fn machine(name: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("DRCTL_HOST", name),
        ("DRCTL_LEASE", "6s"),
        ("DRCTL_LEASE_SKEW", "1s"),
    ]
}

/// A machine whose lease the test does not wait out: drctl's own length,
/// the test's [`SKEW`] (for judging the leases of the others).
pub(crate) fn steady(name: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("DRCTL_HOST", name), ("DRCTL_LEASE_SKEW", "1s")]
}

/// The failover of the fixture's payments plan, as a command to spawn.
fn failover_command(
    fx: &Fixture,
    endpoints: &Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(endpoints)
        .arg("--state")
        .arg(fx.shared.as_deref().expect("a shared-state fixture"))
        .envs(world::run_key_env())
        .args([
            "failover",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--approve",
            "state test",
            "--output",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Waits until the only run's journal contains `needle`; returns the run.
async fn wait_for_journal(fx: &Fixture, needle: &str) -> String {
    world::wait_for(
        &format!("the journal to show {needle}"),
        world::PATIENCE,
        async || {
            let Some(run) = fx.runs().into_iter().next() else {
                return Err("no run yet".into());
            };
            let text = fx.journal_text(&run).await;
            if text.contains(needle) {
                return Ok(run);
            }
            Err(text)
        },
    )
    .await
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

/// Every record from the (last) `resumed` on carries the resumer's fencing
/// token of each plan of the run: the machine that lost its lease wrote
/// nothing after the takeover.
pub(crate) fn only_the_resumer_wrote_after_its_resume(text: &str) {
    let recs = records(text);
    let at = recs
        .iter()
        .position(|r| r["event"]["type"] == "resumed")
        .expect("B's resumed record");
    let tokens = recs[at]["fence"].as_object().expect("B's tokens").clone();
    assert!(
        !tokens.is_empty(),
        "B's resumed record has no token:\n{text}"
    );
    for (plan, b_token) in &tokens {
        assert!(b_token.as_u64().is_some(), "{plan}: {b_token}");
        assert!(
            recs[at..].iter().all(|r| &r["fence"][plan] == b_token),
            "a record after B's resume without B's token of {plan}:\n{text}"
        );
    }
}

/// No step succeeded twice in a journal.
fn no_step_done_twice(text: &str) {
    let mut seen = std::collections::BTreeSet::new();
    for r in records(text) {
        if r["event"]["type"] == "step_succeeded" {
            let step = r["event"]["step"].as_str().unwrap_or_default().to_string();
            assert!(seen.insert(step.clone()), "{step} succeeded twice:\n{text}");
        }
    }
}

/// Machine B (straight to the emulators) resumes `run` to the end: exit 0,
/// the chain verifies, the world is failed over, no step succeeded twice.
/// Returns the journal.
async fn finish_on_machine_b(fx: &Fixture, run: &str) -> String {
    let resumed = fx
        .drctl_with(
            &["runs", "resume", run],
            &steady("machine-b"),
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    let audit = fx.audit(run).await;
    assert_eq!(audit.code, Some(0), "{}", audit.all());
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap).await.unwrap();
    let text = fx.journal_text(run).await;
    no_step_done_twice(&text);
    text
}

/// Rounds of the race per store: each a real two-process race for the
/// lock (ten per store, with the compare-and-swap's both outcomes seen
/// many times over).
const ROUNDS: usize = 10;

async fn racing_failovers_start_exactly_one(scheme: &str) {
    let fx = Fixture::with_state("race", Some(scheme)).await;
    // Every run holds the lock for a second at least, so that both
    // processes of a round compete for it.
    let slow = Proxied::start(false).await;
    slow.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("DescribeAutoScalingGroups"),
        Fault::Delay(Duration::from_millis(300)),
        usize::MAX,
    );
    let args = [
        "failover",
        "--plan",
        "payments",
        "--to",
        STANDBY,
        "--approve",
        "race",
        "--output",
        "json",
    ];
    let mut winners = Vec::new();
    let (env_a, env_b) = (steady("racer-a"), steady("racer-b"));
    let endpoints = slow.endpoints();
    for round in 0..ROUNDS {
        let (a, b) = tokio::join!(
            fx.drctl_with(&args, &env_a, &endpoints),
            fx.drctl_with(&args, &env_b, &endpoints)
        );
        let (win, lose): (&Ran, &Ran) = match (a.code, b.code) {
            (Some(0), Some(3)) => (&a, &b),
            (Some(3), Some(0)) => (&b, &a),
            _ => panic!(
                "round {round}: expected one exit 0 and one exit 3\n{}\n{}",
                a.all(),
                b.all()
            ),
        };
        let run = win.json()["run_id"].as_str().expect("run id").to_string();
        assert!(
            lose.err.contains(&run) && lose.err.contains("is locked by run"),
            "round {round}: the refusal does not name the holder {run}:\n{}",
            lose.all()
        );
        winners.push(run);
    }
    // Exactly the winners journaled runs, and every chain verifies.
    let runs = fx.runs();
    assert_eq!(runs.len(), ROUNDS, "{runs:?}");
    assert!(winners.iter().all(|w| runs.contains(w)));
    let audit = fx.drctl(&["audit", "verify"]).await;
    assert_eq!(audit.code, Some(0), "{}", audit.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_racing_for_one_plan_on_s3_exactly_one_proceeds() {
    crate::needs_emulators!();
    racing_failovers_start_exactly_one("s3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_racing_for_one_plan_on_gcs_exactly_one_proceeds() {
    crate::needs_emulators!();
    racing_failovers_start_exactly_one("gs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_is_resumed_from_another_machine_after_its_lease_expires() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("killed", Some("s3")).await;
    // Machine A's promotion never gets an answer: it is mid-step when killed.
    let hang = Proxied::start(false).await;
    hang.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("PromoteReadReplica"),
        Fault::Hang,
        usize::MAX,
    );
    // A's lease outlives the kill by long enough for B to start and be
    // refused on a slow machine under load: B's refusal must come while
    // A's lease certainly lives.
    let mut a = failover_command(
        &fx,
        &hang.endpoints(),
        &[
            ("DRCTL_HOST", "machine-a"),
            ("DRCTL_LEASE", "12s"),
            ("DRCTL_LEASE_SKEW", "1s"),
        ],
    )
    .spawn()
    .expect("spawn machine A");
    const A_LEASE: Duration = Duration::from_secs(12);
    let promote = fx.step("promote");
    let run = wait_for_journal(&fx, &format!("\"step_started\",\"step\":\"{promote}\"")).await;
    a.start_kill().expect("kill -9");
    let status = a.wait().await.expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let killed_at = Instant::now();

    // Machine B, straight to the emulators: refused while A's lease lives.
    let b = steady("machine-b");
    let early = fx
        .drctl_with(&["runs", "resume", &run], &b, &world::endpoints_file())
        .await;
    let refused_after = killed_at.elapsed();
    eprintln!("B was refused {refused_after:?} after A was killed");
    assert_eq!(early.code, Some(3), "{}", early.all());
    assert!(early.err.contains("machine-a"), "{}", early.all());
    // A renewed its lease at most a third of it before the kill.
    assert!(
        refused_after < A_LEASE - A_LEASE / 3,
        "the refusal came too late to prove anything: {refused_after:?}"
    );

    // Once it has expired, B resumes the run to the end.
    tokio::time::sleep(expired(A_LEASE).saturating_sub(killed_at.elapsed())).await;
    let text = finish_on_machine_b(&fx, &run).await;
    // B's records carry a higher fencing token than A's.
    let recs = records(&text);
    let token = |r: &Value| r["fence"]["payments"].as_u64();
    let resumed_at = recs
        .iter()
        .position(|r| r["event"]["type"] == "resumed" && r["event"]["host"] == "machine-b")
        .expect("a resumed record from machine B");
    let a_token = recs[..resumed_at]
        .iter()
        .filter_map(token)
        .max()
        .expect("A's token");
    let b_token = recs[resumed_at..]
        .iter()
        .filter_map(token)
        .min()
        .expect("B's token");
    assert!(b_token > a_token, "tokens: A {a_token}, B {b_token}");
    // The lease ends released.
    let st = fx
        .drctl(&["lock", "status", "--plan", "payments", "--output", "json"])
        .await;
    assert_eq!(st.json()[0]["state"], "released", "{}", st.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_cut_off_from_the_state_bucket_stops_before_its_next_step() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("cutoff", Some("s3")).await;
    let routed = Proxied::start(false).await;
    // Slow steps, so that A is inside one when its bucket goes away.
    routed.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("DescribeAutoScalingGroups"),
        Fault::Delay(Duration::from_millis(1500)),
        usize::MAX,
    );
    let a = failover_command(&fx, &routed.endpoints(), &machine("machine-a"))
        .spawn()
        .expect("spawn machine A");
    let run = wait_for_journal(&fx, "\"step_started\"").await;
    // The state bucket stops answering A (the evidence buckets still do).
    routed.proxy_for("AWS_ENDPOINT_URL_S3").inject(
        Match::PathContains(format!("/{}/", crate::fixture::IT_STATE_BUCKET)),
        Fault::Hang,
        usize::MAX,
    );
    let cut_at = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(90), a.wait_with_output())
        .await
        .expect("A stops by itself")
        .expect("A's output");
    let stopped_after = cut_at.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to write to the journal"), "{err}");
    // It stopped within its lease (less the skew) plus the step it was in
    // (reads held 1.5 s each at the proxy, slower on a busy machine); not
    // after its requests' own timeouts (30 s), nor never.
    assert!(
        stopped_after < LEASE + Duration::from_secs(15),
        "A stopped {stopped_after:?} after the cut"
    );

    // B takes over once A's lease has expired, and finishes.
    tokio::time::sleep(EXPIRED).await;
    let text = finish_on_machine_b(&fx, &run).await;
    // A wrote nothing after B took over: every record after B's `resumed`
    // is B's (its token).
    only_the_resumer_wrote_after_its_resume(&text);
    drop(routed);
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_status_and_break_on_shared_state() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("break", Some("s3")).await;
    let free = fx
        .drctl(&["lock", "status", "--plan", "payments", "--output", "json"])
        .await;
    assert_eq!(free.json()[0]["state"], "free", "{}", free.all());

    let hang = Proxied::start(false).await;
    hang.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("PromoteReadReplica"),
        Fault::Hang,
        usize::MAX,
    );
    let mut a = failover_command(&fx, &hang.endpoints(), &steady("machine-a"))
        .spawn()
        .expect("spawn");
    let promote = fx.step("promote");
    let run = wait_for_journal(&fx, &format!("\"step_started\",\"step\":\"{promote}\"")).await;

    let st = fx
        .drctl(&["lock", "status", "--plan", "payments", "--output", "json"])
        .await;
    assert_eq!(st.code, Some(0), "{}", st.all());
    let held = &st.json()[0];
    assert_eq!(held["state"], "held", "{held}");
    assert_eq!(held["holder"]["run_id"], run.as_str());
    assert_eq!(held["holder"]["host"], "machine-a");
    assert!(held["token"].as_u64().unwrap_or(0) > 0, "{held}");
    let text = fx.drctl(&["lock", "status"]).await;
    assert!(text.out.contains("lease left"), "{}", text.all());

    let no_reason = fx
        .drctl(&["lock", "break", "--plan", "payments", "--reason", " "])
        .await;
    assert_eq!(no_reason.code, Some(2), "{}", no_reason.all());
    let broke = fx
        .drctl(&[
            "lock",
            "break",
            "--plan",
            "payments",
            "--reason",
            "stuck promotion in a test",
        ])
        .await;
    assert_eq!(broke.code, Some(0), "{}", broke.all());
    assert!(broke.out.contains(&run), "{}", broke.all());
    let after = fx
        .drctl(&["lock", "status", "--plan", "payments", "--output", "json"])
        .await;
    assert_eq!(after.json()[0]["state"], "released", "{}", after.all());
    assert!(
        after.json()[0]["token"].as_u64() > held["token"].as_u64(),
        "breaking raises the token"
    );
    a.start_kill().expect("kill");
    let _ = a.wait().await;

    // Both sides on record: the broken run says who broke it and why.
    let show = fx.show(&run).await;
    let lost = show["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["event"]["type"] == "lock_lost")
        .unwrap_or_else(|| panic!("no lock_lost record: {show}"))
        .clone();
    assert_eq!(lost["event"]["reason"], "stuck promotion in a test");
    // The run is resumable at once: the lease is released.
    let resumed = fx
        .drctl_with(
            &["runs", "resume", &run],
            &steady("machine-b"),
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// Writers racing on one journal: each appends until it has 10 records in,
/// re-opening whenever another got there first.
async fn concurrent_appenders(scheme: &str) {
    let base = crate::fixture::shared_state(&world::unique("appenders"), Some(scheme))
        .await
        .expect("a bucket");
    let store: Arc<dyn JournalStore> = Arc::new(ObjectJournalStore::new(
        world::clouds().await.objects,
        STANDBY,
        ObjectUrl::parse(&base).expect("url"),
    ));
    let run = "20261122T000000Z-appenders-0001";
    Journal::create(store.clone(), run).await.expect("create");
    let writers = 6;
    let each = 8;
    let tasks = (0..writers).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < each {
                let (mut j, _) = Journal::open_for_append(store.clone(), run)
                    .await
                    .expect("open");
                loop {
                    match j
                        .append(Event::Resumed {
                            host: format!("writer-{w}"),
                            pid: done,
                            dropped_torn_line: None,
                        })
                        .await
                    {
                        Ok(_) => {
                            done += 1;
                            if done == each {
                                j.flush().await.expect("flush");
                                break;
                            }
                        }
                        Err(JournalError::Conflict { .. }) => {
                            conflicts += 1;
                            break;
                        }
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
            }
            conflicts
        })
    });
    let conflicts: u32 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("writer"))
        .sum();
    let records = drctl::journal::read(store.as_ref(), run)
        .await
        .expect("the chain verifies");
    assert_eq!(records.len(), (writers * each) as usize);
    for w in 0..writers {
        let mine: Vec<u32> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Resumed { host, pid, .. } if *host == format!("writer-{w}") => Some(*pid),
                _ => None,
            })
            .collect();
        assert_eq!(mine, (0..each).collect::<Vec<_>>(), "writer {w}");
    }
    eprintln!("{scheme}: {conflicts} lost races, no fork");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appenders_never_fork_a_journal_on_s3() {
    crate::needs_emulators!();
    concurrent_appenders("s3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appenders_never_fork_a_journal_on_gcs() {
    crate::needs_emulators!();
    concurrent_appenders("gs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_that_ignores_conditional_writes_is_refused() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("liar", Some("s3")).await;
    let liar = Proxied::start(false).await;
    liar.proxy_for("AWS_ENDPOINT_URL_S3").inject(
        Match::Any,
        Fault::StripHeaders(vec!["if-none-match", "if-match"]),
        usize::MAX,
    );
    // A command that writes is refused before it writes anything...
    let o = fx
        .drctl_with(
            &["lock", "break", "--plan", "payments", "--reason", "test"],
            &[],
            &liar.endpoints(),
        )
        .await;
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.err.contains("refusing the state bucket") && o.err.contains("ignored"),
        "{}",
        o.all()
    );
    // ...one that only reads writes nothing, so it needs no conditional
    // writes and is not refused.
    let o = fx
        .drctl_with(&["runs", "list"], &[], &liar.endpoints())
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let o = fx.failover_payments_via(&liar.endpoints(), &[]).await;
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(fx.runs().is_empty(), "a run started on an unsafe store");
    // The same bucket, honestly served, is accepted.
    let ok = fx.drctl(&["runs", "list"]).await;
    assert_eq!(ok.code, Some(0), "{}", ok.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn force_unlock_with_a_reason_takes_a_live_lease_and_both_runs_record_it() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("force", Some("s3")).await;
    let hang = Proxied::start(false).await;
    hang.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("PromoteReadReplica"),
        Fault::Hang,
        usize::MAX,
    );
    let mut a = failover_command(&fx, &hang.endpoints(), &steady("machine-a"))
        .spawn()
        .expect("spawn");
    let promote = fx.step("promote");
    let stuck = wait_for_journal(&fx, &format!("\"step_started\",\"step\":\"{promote}\"")).await;

    // Without a reason a live lease is not taken...
    let b = steady("machine-b");
    let refused = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "t",
                "--force-unlock",
            ],
            &b,
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(
        refused.err.contains("its lease is live"),
        "{}",
        refused.all()
    );
    // ...with one it is, and the new run finishes the failover.
    let forced = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "t",
                "--force-unlock",
                "machine A is unreachable",
                "--output",
                "json",
            ],
            &b,
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(forced.code, Some(0), "{}", forced.all());
    let new_run = forced.json()["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap).await.unwrap();
    a.start_kill().expect("kill");
    let _ = a.wait().await;

    // The new run records whom it displaced and why...
    let show = fx.show(&new_run).await;
    let gate = show["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["event"]["type"] == "gate" && r["event"]["gate"] == "lock")
        .unwrap_or_else(|| panic!("no lock gate: {show}"))
        .clone();
    assert_eq!(
        gate["event"]["detail"]["previous_holder"]["run_id"],
        stuck.as_str()
    );
    assert_eq!(gate["event"]["detail"]["holder_was_live"], true);
    assert_eq!(
        gate["event"]["detail"]["reason"],
        "machine A is unreachable"
    );
    // ...and the displaced run says who took its lock.
    let old = fx.show(&stuck).await;
    let lost = old["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["event"]["type"] == "lock_lost")
        .unwrap_or_else(|| panic!("no lock_lost in the displaced run: {old}"))
        .clone();
    assert_eq!(lost["event"]["by_run"], new_run.as_str());
    assert_eq!(lost["event"]["reason"], "machine A is unreachable");
    assert_eq!(fx.audit(&stuck).await.code, Some(0));
    assert_eq!(fx.audit(&new_run).await.code, Some(0));
}

/// A webhook that refuses the first attempt of each event (503) and accepts
/// the next ones (204), keeping each body: the sink of the runs below. The
/// run's own first attempts fail, so while it runs its events are owed,
/// and `notify flush` has something to deliver.
struct Hook {
    url: String,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let kept = bodies.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length])
                                .into_owned();
                            let id = serde_json::from_str::<Value>(&body)
                                .ok()
                                .and_then(|e| e["id"].as_str().map(str::to_string));
                            let first = {
                                let mut kept = crate::proxy::lock(&kept);
                                let first = !kept.iter().any(|b| {
                                    serde_json::from_str::<Value>(b)
                                        .ok()
                                        .and_then(|e| e["id"].as_str().map(str::to_string))
                                        == id
                                });
                                kept.push(body);
                                first
                            };
                            let answer: &[u8] = if first {
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            } else {
                                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            };
                            let _ = conn.write_all(answer).await;
                            return;
                        }
                    }
                });
            }
        });
        Self { url, bodies, task }
    }

    /// The event types received.
    fn types(&self) -> Vec<String> {
        crate::proxy::lock(&self.bodies)
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter_map(|e| e["type"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The bug this pins: `drctl failover --emergency`, and while it ran,
/// `drctl runs approve RUN` (the command its own `approval_needed`
/// notification suggests) and `drctl notify flush` (from cron, as the docs
/// suggest). Both appended to the live run's journal: every step succeeded,
/// then the failover exited 1 with "the journal ... is broken at line 9:
/// seq 7 follows seq 7" (a directory), or its own next record was refused
/// (a bucket); `audit verify` said BROKEN and `runs show` failed. Now both
/// record beside the journal: the run exits 0, its chain verifies, and the
/// approval shows and counts (the run's own report no longer asks for it).
async fn retroactive_approval_during_a_live_failover(scheme: &str) {
    let fx = Fixture::with_state(&format!("late{scheme}"), Some(scheme)).await;
    let hook = Hook::start().await;
    let cfg_dir = tempfile::tempdir().expect("config dir");
    let cfg = cfg_dir.path().join("drctl.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .expect("write drctl.toml");
    let cfg = cfg.display().to_string();
    let state: Vec<String> = match &fx.shared {
        Some(url) => vec!["--state".into(), url.clone()],
        None => vec!["--state-dir".into(), fx.state_dir().display().to_string()],
    };
    // The promotion is answered late: the run is live, inside a step,
    // while the two commands run.
    let held = Proxied::start(false).await;
    held.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("PromoteReadReplica"),
        Fault::Delay(Duration::from_secs(12)),
        1,
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never", "--config", &cfg, "--plans"])
        .arg(fx.plans.path())
        .envs(world::run_key_env())
        .arg("--endpoints")
        .arg(held.endpoints())
        .args(&state)
        .args([
            "failover",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--emergency",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let failover = cmd.spawn().expect("spawn the failover");
    let promote = fx.step("promote");
    let run = wait_for_journal(&fx, &format!("\"step_started\",\"step\":\"{promote}\"")).await;

    let approved = fx
        .drctl(&[
            "--config",
            &cfg,
            "runs",
            "approve",
            &run,
            "--reason",
            "the region was down",
        ])
        .await;
    assert_eq!(approved.code, Some(0), "{}", approved.all());
    assert!(
        approved.out.contains("approved run") && approved.out.contains("for plan payments"),
        "{}",
        approved.all()
    );
    let flushed = fx.drctl(&["--config", &cfg, "notify", "flush"]).await;
    assert_eq!(flushed.code, Some(0), "{}", flushed.all());
    // Both ran while the run was live (inside its promotion).
    let text = fx.journal_text(&run).await;
    assert!(
        !text.contains("\"run_finished\""),
        "the run ended before the commands were done: the test proved nothing\n{text}"
    );

    let out = tokio::time::timeout(Duration::from_secs(120), failover.wait_with_output())
        .await
        .expect("the failover ends")
        .expect("its output");
    let ran = Ran::from_output(out);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        !ran.out.contains("approve it retroactively by"),
        "the run's own report counts the approval given while it ran:\n{}",
        ran.all()
    );
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();

    // The chain verifies, with the facts recorded beside it.
    let audit = fx.audit(&run).await;
    assert_eq!(audit.code, Some(0), "{}", audit.all());
    assert!(audit.out.contains("chain intact"), "{}", audit.all());
    assert!(audit.out.contains("late fact"), "{}", audit.all());
    let text = fx.journal_text(&run).await;
    assert!(
        !text.contains("\"retroactive\""),
        "only the run appends to its journal:\n{text}"
    );
    no_step_done_twice(&text);
    if fx.shared.is_none() {
        let beside = fx.state_dir().join(format!("runs/{run}.late"));
        assert!(
            std::fs::read_dir(&beside).map_or(0, |d| d.count()) >= 2,
            "the approval and the deliveries are files beside the journal"
        );
    }

    // The approval shows, and counts.
    let show = fx.show(&run).await;
    let approvals = crate::fixture::gates(&show, "approval");
    let decisions: Vec<&str> = approvals
        .iter()
        .filter_map(|g| g["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["override", "retroactive"], "{show:#}");
    assert!(
        approvals[1]["detail"]["approved_by"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:")),
        "{show:#}"
    );
    assert_eq!(approvals[1]["detail"]["reason"], "the region was down");
    assert_eq!(show["report"]["approve_by"], Value::Null, "{show:#}");
    let records = crate::fixture::records(&show);
    let late: Vec<&Value> = records
        .iter()
        .filter(|r| !r["late"].is_null())
        .map(|r| &r["event"]["type"])
        .collect();
    assert!(late.iter().any(|t| *t == "gate"), "{show:#}");
    assert!(
        late.iter().any(|t| *t == "delivery"),
        "notify flush's deliveries, recorded beside the journal: {show:#}"
    );
    let text_show = fx.drctl(&["runs", "show", &run]).await;
    assert_eq!(text_show.code, Some(0), "{}", text_show.all());
    assert!(
        text_show
            .out
            .contains("late gate approval for payments: retroactive"),
        "{}",
        text_show.all()
    );
    // The sink heard of the approval needed, with the command that gives it.
    assert!(
        hook.types()
            .iter()
            .any(|t| t == "dev.drctl.run.approval_needed"),
        "{:?}",
        hook.types()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_retroactive_approval_broke_the_live_journal() {
    crate::needs_emulators!();
    retroactive_approval_during_a_live_failover("dir").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_retroactive_approval_broke_the_live_journal_on_s3() {
    crate::needs_emulators!();
    retroactive_approval_during_a_live_failover("s3").await;
}

/// Every command on bucket state wrote a probe object (and deleted it), so
/// an auditor with read-only credentials could not run `audit verify`.
/// Commands that only read write nothing now, counted at a proxy; and they
/// do their work with credentials that may not write (every S3 `PUT` and
/// `DELETE` refused `AccessDenied`, as an auditor's read-only role is).
#[tokio::test(flavor = "multi_thread")]
async fn regression_read_only_commands_wrote_a_probe_object() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("readonly", Some("s3")).await;
    let done = fx.failover_payments(&[]).await;
    assert_eq!(done.code, Some(0), "{}", done.all());
    let run = fx.runs().into_iter().next().expect("the failover's run");
    let proxied = Proxied::start(false).await;
    let denied = Fault::Error {
        status: 403,
        code: "AccessDenied",
    };
    for method in ["PUT", "DELETE"] {
        proxied.proxy_for("AWS_ENDPOINT_URL_S3").inject(
            Match::MethodPath(method, "/".into()),
            denied.clone(),
            usize::MAX,
        );
    }
    for cmd in [
        vec!["runs", "list"],
        vec!["runs", "show", run.as_str()],
        vec!["audit", "verify", run.as_str()],
        vec!["audit", "verify"],
        vec!["report", "--since", "1d", "--format", "json"],
        vec!["lock", "status"],
        vec!["notify", "pending"],
        vec!["watch", "status"],
        vec!["audit", "verify", "--evidence", "--no-record", run.as_str()],
    ] {
        let o = fx.drctl_with(&cmd, &[], &proxied.endpoints()).await;
        assert_eq!(o.code, Some(0), "{cmd:?}: {}", o.all());
        let writes = proxied.writes();
        assert!(writes.is_empty(), "{cmd:?} wrote: {writes:#?}");
    }
    // It read the bucket (this was not a command that never reached it).
    assert!(
        proxied
            .log()
            .iter()
            .any(|l| l.starts_with("GET ") && l.contains(&run)),
        "{:#?}",
        proxied.log()
    );
}

/// `drctl lock status` on `base`, from this host (whose clock is right).
async fn lock_status(base: &str, output: &str) -> Ran {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--endpoints"])
        .arg(world::endpoints_file())
        .args(["--state", base, "lock", "status", "--plan", "payments"])
        .args(["--output", output])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("drctl runs");
    Ran::from_output(o)
}

/// Leases on `base` through the real adapters, from a host whose clock
/// reads the machine's time plus `offset`.
async fn leases_from(base: &str, offset: chrono::Duration) -> LeaseLocks {
    LeaseLocks::new(
        world::clouds().await.objects,
        STANDBY,
        ObjectUrl::parse(base).expect("url"),
        LeaseTimes {
            length: Duration::from_secs(60),
            skew: Duration::from_secs(10),
        },
    )
    .with_clock(Arc::new(TokioClock::starting_at(
        chrono::Utc::now() + offset,
    )))
}

/// Leases are judged by the store's clock, which the real adapters read
/// from the answers (`Last-Modified`, `Date`): a holder whose clock runs an
/// hour slow keeps its live lease, a host an hour fast is told it is off,
/// and `lock status` shows both against the store.
async fn lock_status_shows_the_clocks_against_the_store(scheme: &str) {
    let base = crate::fixture::shared_state(&world::unique("skew"), Some(scheme))
        .await
        .expect("a bucket");
    let hour = chrono::Duration::hours(1);
    let slow = leases_from(&base, -hour).await;
    let run = "20261125T000000Z-skew-0001";
    let held = slow
        .acquire(
            "payments",
            &Holder::current(run, RunKind::Failover),
            Takeover::default(),
        )
        .await
        .expect("the slow host takes the free lease");

    let st = lock_status(&base, "json").await;
    assert_eq!(st.code, Some(0), "{}", st.all());
    let lease = &st.json()[0];
    assert_eq!(lease["state"], "held", "not an hour expired: {lease}");
    let clocks = &lease["clocks"];
    assert_eq!(clocks["judged_by_store"], true, "{lease}");
    assert_eq!(clocks["host_off"], false, "{lease}");
    // Same machine as the emulator: within the HTTP date's second (and
    // the request's latency).
    let host = clocks["host_skew_ms"].as_i64().expect("host skew");
    assert!(host.abs() <= 2_000, "{lease}");
    let writer = clocks["writer_skew_ms"].as_i64().expect("writer skew");
    assert!((writer + 3_600_000).abs() <= 2_000, "{lease}");
    assert!(clocks["store_time"].is_string(), "{lease}");
    let text = lock_status(&base, "text").await;
    assert!(text.out.contains("off the store"), "{}", text.all());
    assert!(text.out.contains("its last writer -3"), "{}", text.all());
    assert!(!text.out.contains("warning"), "{}", text.all());

    // A host whose clock is right, forcing without a reason, finds it live.
    let right = leases_from(&base, chrono::Duration::zero()).await;
    let forced = Takeover {
        force: true,
        ..Default::default()
    };
    match right
        .acquire(
            "payments",
            &Holder::current("other", RunKind::Failover),
            forced,
        )
        .await
    {
        Err(LockError::Held { alive: true, .. }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A host an hour fast: measured off, and it breaks nothing either.
    let fast = leases_from(&base, hour).await;
    let seen = &fast.status(&["payments".into()]).await.expect("status")[0];
    assert_eq!(seen.state, "held");
    let c = seen.clocks.expect("the store said its time");
    assert!(c.host_off, "{c:?}");
    assert!((c.host_skew_ms - 3_600_000).abs() <= 2_000, "{c:?}");
    assert!(
        fast.acquire(
            "payments",
            &Holder::current("other", RunKind::Failover),
            forced
        )
        .await
        .is_err()
    );
    held.lock.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_status_shows_the_clocks_against_the_store_on_s3() {
    crate::needs_emulators!();
    lock_status_shows_the_clocks_against_the_store("s3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_status_shows_the_clocks_against_the_store_on_gcs() {
    crate::needs_emulators!();
    lock_status_shows_the_clocks_against_the_store("gs").await;
}

/// Issue 74, attack 11: S3 and GCS bodies were read whole, and the
/// project's bucket policy forbids deleting under `runs/`, so one large
/// object a writer of the state put there took every watcher's memory,
/// every round. An object larger than drctl reads (64 MiB) is refused by
/// its declared length before its body is read, on S3 and on GCS; one at
/// the limit is read.
#[tokio::test]
async fn regression_one_large_object_was_read_whole_by_every_watcher() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let limit = usize::try_from(drctl::cloud::MAX_OBJECT_BYTES).unwrap();
    for scheme in ["s3", "gs"] {
        let base = crate::fixture::shared_state(&world::unique("large"), Some(scheme))
            .await
            .expect("a bucket");
        let at = |name: &str| ObjectUrl::parse(&format!("{base}/runs/{name}")).expect("url");
        let (big, fits) = (at("big.jsonl"), at("fits.jsonl"));
        let put = |url: ObjectUrl, len: usize| {
            let objects = clouds.objects.clone();
            async move {
                let body = bytes::Bytes::from(vec![b'x'; len]);
                if url.scheme == drctl::cloud::ObjectScheme::Gcs {
                    // The emulator answers a resumable upload of this size
                    // with a Location that lacks its port: one simple upload
                    // to it directly, as a writer of the bucket would.
                    let endpoint = world::gcs_endpoint();
                    let to = format!("{endpoint}/upload/storage/v1/b/{}/o", url.bucket);
                    let sent = reqwest::Client::new()
                        .post(to)
                        .query(&[("uploadType", "media"), ("name", url.key.as_str())])
                        .body(body)
                        .send()
                        .await
                        .expect("upload");
                    assert!(sent.status().is_success(), "{}", sent.status());
                    return;
                }
                (objects
                    .put(STANDBY, &url, body, drctl::cloud::PutMode::Overwrite)
                    .await)
                    .expect("put");
            }
        };
        put(big.clone(), limit + 1).await;
        put(fits.clone(), limit).await;
        // Each listing says its objects' sizes (a journal is judged by
        // them before its records are read).
        let listed = (clouds.objects)
            .list(STANDBY, &at(""), false)
            .await
            .expect("list");
        for (url, len) in [(&big, limit + 1), (&fits, limit)] {
            assert_eq!(
                listed.sizes.get(&url.key),
                Some(&(len as u64)),
                "{scheme}: {listed:?}"
            );
        }
        let e = clouds.objects.get(STANDBY, &big).await.unwrap_err();
        assert_eq!(e.kind, drctl::cloud::ErrorKind::Client, "{scheme}: {e}");
        assert!(e.to_string().contains("64 MiB"), "{scheme}: {e}");
        let read = clouds.objects.get(STANDBY, &fits).await.expect("read");
        assert_eq!(read.map(|b| b.len()), Some(limit), "{scheme}");
        // As a journal's record: the journal is left out and named by
        // every reader of runs, which goes on (it does not fail every
        // round: the object cannot be deleted under `runs/`).
        let store: Arc<dyn JournalStore> = Arc::new(ObjectJournalStore::new(
            clouds.objects.clone(),
            STANDBY,
            ObjectUrl::parse(&base).expect("url"),
        ));
        let (ok, large) = ("20261129T000000Z-large-0001", "20261129T000000Z-large-0002");
        for run in [ok, large] {
            let mut j = Journal::create(store.clone(), run).await.expect("create");
            j.append(Event::RunFinished {
                outcome: drctl::journal::Outcome::Succeeded,
                summary: serde_json::Value::Null,
            })
            .await
            .expect("append");
            j.flush().await.expect("flush");
        }
        put(at(&format!("{large}/0000000001.json")), limit + 1).await;
        let runs = drctl::journal::runs::read_runs(store.as_ref(), |_| true)
            .await
            .expect("the other runs are read");
        let read: Vec<&str> = runs.runs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(read, [ok], "{scheme}");
        assert_eq!(runs.left_out.len(), 1, "{scheme}: {:?}", runs.left_out);
        assert!(
            runs.left_out[0].1.contains("64 MiB"),
            "{scheme}: {:?}",
            runs.left_out
        );
    }
}
