//! `drctl watch` as three observers against the emulator world: the chaos
//! matrix of docs/watch.md, scripted. Each observer is a real `drctl watch`
//! process with its own copy of the plans (its checks probe servers the
//! test controls, per observer, as observers in different places each have
//! their own path to a region) and its own endpoints file (a region dies
//! for an observer when the fault proxies in front of its endpoints reset
//! every request signed for that region). They share one state directory.
//!
//! The matrix counts false failovers (a run started where none should be)
//! and missed ones (none started where one should be): both must be zero.
//!
//! Each observer signs with a key of its own, listed under its name in the
//! scenario's `drctl.toml` (`[[watch.observers]]`); people veto with the
//! operators' run key (`[keys]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::adapters::fake_server;
use crate::fixture::{Fixture, Proxied};
use crate::proxy::{Fault, FaultProxy, Match};
use crate::world::{self, HOME};
use drctl::state::board::{Board, DirBoard};

/// The observers a scenario lists (each with a key of its own).
const OBSERVERS: &[&str] = &["obs-1", "obs-2", "obs-3", "obs-cron"];
const SINK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The interval of every scenario, and failed observations in a row.
const INTERVAL: Duration = Duration::from_secs(1);
const FAILURES: u32 = 3;
/// What detection may take beyond `FAILURES × INTERVAL`: a round's reads
/// (each bounded by the 3 s read timeout; a reset answers at once), the
/// shared state's reads, a second observer's round to form the quorum, and
/// a loaded 2-core machine running several scenarios at once (and, in CI,
/// the rest of the suite beside them: 17.5 s was seen there once). A bound
/// that says "within seconds, not minutes", not a speed target: those live
/// in `benches/`.
const DETECTION_BOUND: Duration = Duration::from_secs(25);
/// The bound on a wait for something the observers do within seconds on
/// any machine (start, detect, say, tell, propose): it only keeps a broken
/// scenario from hanging, and is no speed target. Waits are for what a
/// scenario asserts, never for an amount of time.
const WAIT: Duration = Duration::from_secs(120);
/// The bound on a failover run (or all of a scenario's) to end: its steps
/// wait on the emulators' promotions and DNS, which a busy emulator (the
/// rest of the suite beside it) stretches to minutes (336 s seen).
const RUN_BOUND: Duration = Duration::from_secs(600);
/// The bound on one observer round, added per round waited for: its reads
/// are each bounded by the 3 s read timeout, on a loaded machine.
const ROUND_BOUND: Duration = Duration::from_secs(20);

type DateTime = chrono::DateTime<chrono::Utc>;

/// How each observer's checks answer, per region: `true` healthy. A
/// flapping region alternates per request, per observer.
#[derive(Default)]
struct Health {
    down: Mutex<BTreeMap<String, bool>>,
    flapping: AtomicBool,
    count: Mutex<BTreeMap<String, usize>>,
}

impl Health {
    fn set(&self, region: &str, up: bool) {
        self.down.lock().unwrap().insert(region.into(), !up);
    }

    fn answer(&self, path: &str) -> u16 {
        // `/REGION/OBSERVER`.
        let region = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if region == HOME && self.flapping.load(Ordering::SeqCst) {
            let mut c = self.count.lock().unwrap();
            let n = c.entry(path.to_string()).or_default();
            *n += 1;
            return if (*n).is_multiple_of(2) { 503 } else { 200 };
        }
        if self
            .down
            .lock()
            .unwrap()
            .get(region)
            .copied()
            .unwrap_or(false)
        {
            503
        } else {
            200
        }
    }
}

/// One scenario's world: a seeded fixture, the check server, the proxies
/// that kill the home region, and the running observers.
struct Scenario {
    name: &'static str,
    fx: Fixture,
    health: Arc<Health>,
    checks: String,
    dead: Proxied,
    dir: tempfile::TempDir,
    observers: Vec<Observer>,
    sink: Arc<Mutex<Vec<String>>>,
    /// The shared state the observers use instead of the fixture's state
    /// directory (`s3://...`), when the scenario is about the store.
    shared: Option<String>,
    /// Each listed observer's secret key.
    keys: BTreeMap<String, drctl::sign::SecretKey>,
    /// The operators' run key (it signs vetoes).
    run_key: drctl::sign::SecretKey,
}

struct Observer {
    name: String,
    child: tokio::process::Child,
    out: PathBuf,
    err: PathBuf,
}

impl Observer {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

/// A watched plan: which one, its `[watch]` lines.
struct Watched {
    plan: &'static str,
    watch: String,
}

fn watch_section(mode: &str, extra: &str) -> String {
    format!(
        "\n[watch]\nmode = \"{mode}\"\ninterval = \"1s\"\nfailures = {FAILURES}\nquorum = 2\nfreshness = \"10s\"\n{extra}\n"
    )
}

impl Scenario {
    async fn new(name: &'static str, max_failovers: usize) -> Self {
        Self::on(name, max_failovers, Fixture::new("watch").await, None).await
    }

    /// A scenario whose observers share `fx`'s state in a bucket (S3 on
    /// LocalStack), reached through the scenario's proxies.
    async fn on_s3(name: &'static str, max_failovers: usize) -> Self {
        let fx = Fixture::with_state("watch", Some("s3")).await;
        let shared = fx.shared.clone();
        assert!(shared.is_some(), "an s3 state");
        Self::on(name, max_failovers, fx, shared).await
    }

    async fn on(
        name: &'static str,
        max_failovers: usize,
        fx: Fixture,
        shared: Option<String>,
    ) -> Self {
        let health = Arc::new(Health::default());
        let h = health.clone();
        let (checks, _) = fake_server(Arc::new(move |req: &str| {
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let status = h.answer(&path);
            Some((
                status,
                if status == 200 { "ok" } else { "down" }.to_string(),
            ))
        }))
        .await;
        let sink = Arc::new(Mutex::new(Vec::new()));
        let s = sink.clone();
        let (sink_url, _) = fake_server(Arc::new(move |req: &str| {
            s.lock().unwrap().push(req.to_string());
            Some((200, "ok".to_string()))
        }))
        .await;
        let dead = Proxied::start(false).await;
        let dir = tempfile::tempdir().unwrap();
        let keys: BTreeMap<String, drctl::sign::SecretKey> = OBSERVERS
            .iter()
            .map(|o| (o.to_string(), drctl::sign::SecretKey::generate()))
            .collect();
        let listed: String = keys
            .iter()
            .map(|(name, k)| {
                format!(
                    "[[watch.observers]]\nname = \"{name}\"\nkeys = [\"{}\"]\n\n",
                    k.public()
                )
            })
            .collect();
        let run_key = world::run_key().clone();
        std::fs::write(
            dir.path().join("drctl.toml"),
            format!(
                "[keys]\nrun_public = [\"{}\"]\n\n[watch]\nmax_failovers = {max_failovers}\nvelocity_window = \"1h\"\nread_timeout = \"3s\"\n\n{listed}[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{sink_url}/hook\"\nsecret_env = \"DRCTL_IT_WATCH_SINK\"\nevents = [\"dev.drctl.watch.*\"]\n",
                run_key.public()
            ),
        )
        .unwrap();
        Self {
            name,
            fx,
            health,
            checks,
            dead,
            dir,
            observers: Vec::new(),
            sink,
            shared,
            keys,
            run_key,
        }
    }

    /// Kills (or revives) `region` for the observers on the shared proxies.
    fn region(&self, region: &'static str, up: bool) {
        // The API signal of every watched plan is its database's describe.
        let p = self.dead.proxy_for("AWS_ENDPOINT_URL_RDS");
        if up {
            p.clear();
        } else {
            p.inject(Match::Region(region), Fault::Reset, usize::MAX);
        }
        self.health.set(region, up);
    }

    /// A copy of the fixture's plans for `observer`: the watched plans get
    /// `[watch]` and a `[[check]]` per region probing `base/REGION/OBSERVER`.
    fn plans_for(&self, observer: &str, watched: &[Watched], base: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("plans-{observer}"));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(self.fx.plans.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            let mut text = std::fs::read_to_string(entry.path()).unwrap();
            if let Some(w) = watched.iter().find(|w| format!("{}.toml", w.plan) == name) {
                let regions: Vec<&str> = if w.plan == "payments" {
                    vec!["us-west-2", "us-east-1", "eu-west-1"]
                } else {
                    vec!["us-west-2", "us-east-1"]
                };
                let urls: Vec<String> = regions
                    .iter()
                    .map(|r| format!("{r} = \"{base}/{r}/{observer}\""))
                    .collect();
                text.push_str(&w.watch);
                text.push_str(&format!(
                    "\n[[check]]\nid = \"{}-health\"\nregions = {{ {} }}\ntimeout = \"2s\"\n",
                    w.plan,
                    urls.join(", ")
                ));
            }
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    /// `drctl` as `observer` (with its key) on this scenario's settings and
    /// state, with `plans` (the observer's own copy) and `endpoints`.
    fn command(&self, observer: &str, plans: &Path, endpoints: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
        cmd.args(["--color", "never", "--config"])
            .arg(self.dir.path().join("drctl.toml"))
            .arg("--plans")
            .arg(plans)
            .arg("--endpoints")
            .arg(endpoints);
        match &self.shared {
            Some(url) => cmd.arg("--state").arg(url),
            None => cmd.arg("--state-dir").arg(self.fx.state_dir()),
        };
        let key = self.keys.get(observer).map(|k| k.to_text());
        // The run key too: an observer may start a failover run.
        cmd.env("DRCTL_OBSERVER_KEY", key.unwrap_or_default())
            .env("DRCTL_RUN_KEY", self.run_key.to_text())
            .env("DRCTL_IT_WATCH_SINK", SINK_SECRET)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null());
        cmd
    }

    /// `drctl ARGS` with the fixture's plans and this scenario's settings.
    async fn cli(&self, args: &[&str]) -> crate::fixture::Ran {
        let config = self.dir.path().join("drctl.toml").display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let run_key = self.run_key.to_text();
        self.fx
            .drctl_with(
                &all,
                &[
                    ("DRCTL_RUN_KEY", run_key.as_str()),
                    ("DRCTL_IT_WATCH_SINK", SINK_SECRET),
                ],
                &world::endpoints_file(),
            )
            .await
    }

    /// The scenario's line of the matrix: `expected` failovers, and those started.
    fn tally(&self, expected: usize) -> Vec<Tally> {
        vec![Tally {
            name: self.name,
            expected,
            started: self.runs().len(),
        }]
    }

    /// Starts `drctl watch` as `name`.
    fn observe(
        &mut self,
        name: &str,
        watched: &[Watched],
        endpoints: &Path,
        base: Option<&str>,
        extra: &[&str],
    ) {
        let base = base.map_or_else(|| self.checks.clone(), str::to_string);
        let plans = self.plans_for(name, watched, &base);
        let out = self.dir.path().join(format!("{name}.out"));
        let err = self.dir.path().join(format!("{name}.err"));
        let mut cmd = self.command(name, &plans, endpoints);
        cmd.args(["watch", "--observer", name])
            .args(extra)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .kill_on_drop(true);
        for w in watched {
            cmd.args(["--plan", w.plan]);
        }
        let child = cmd.spawn().expect("drctl watch starts");
        self.observers.push(Observer {
            name: name.to_string(),
            child,
            out,
            err,
        });
    }

    /// Three observers on the shared proxies.
    fn three(&mut self, watched: &[Watched]) {
        let endpoints = self.dead.endpoints();
        for i in 1..=3 {
            self.observe(&format!("obs-{i}"), watched, &endpoints, None, &[]);
        }
    }

    /// Failovers and failbacks in the state.
    fn runs(&self) -> Vec<Run> {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir(self.fx.state_dir().join("runs")) else {
            return out;
        };
        for e in dir.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let records: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let Some(first) = records.first() else {
                continue;
            };
            let kind = first["event"]["kind"].as_str().unwrap_or("").to_string();
            if kind != "failover" && kind != "failback" {
                continue;
            }
            let at = first["at"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default();
            let by_watch = !first["event"]["flags"]["watch"].is_null();
            let end = records
                .iter()
                .rev()
                .find(|r| r["event"]["type"] == "run_finished");
            out.push(Run {
                kind,
                started: at,
                by_watch,
                outcome: end.and_then(|r| r["event"]["outcome"].as_str().map(str::to_string)),
                ended: end
                    .and_then(|r| r["at"].as_str())
                    .and_then(|t| t.parse().ok()),
            });
        }
        out
    }

    fn said(&self, text: &str) -> bool {
        self.observers.iter().any(|o| o.stdout().contains(text))
    }

    fn told(&self, text: &str) -> bool {
        self.sink.lock().unwrap().iter().any(|b| b.contains(text))
    }

    /// Waits until `f` holds (or `limit` passes); whether it held.
    async fn until(&self, limit: Duration, f: impl Fn(&Self) -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if f(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        f(self)
    }

    /// Waits until `f` holds; fails, naming `what` and with the observers'
    /// output, when it does not within `bound`.
    async fn wait_for(&self, what: &str, bound: Duration, f: impl Fn(&Self) -> bool) {
        let t0 = Instant::now();
        let held = self.until(bound, f).await;
        // The scenario's timeline (shown with a failure, or --nocapture).
        eprintln!("{}: {:.1?} for {what}", self.name, t0.elapsed());
        if !held {
            panic!(
                "{}: waited {bound:?} for {what}, in vain\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// What the observers have written so far.
    fn log(&self) -> String {
        let mut log = String::new();
        for o in &self.observers {
            log.push_str(&format!(
                "--- {} stdout\n{}--- {} stderr\n{}",
                o.name,
                o.stdout(),
                o.name,
                o.stderr()
            ));
        }
        log
    }

    /// The board the observers share (`watch/board` in the state).
    async fn board(&self) -> Box<dyn Board> {
        match &self.shared {
            Some(url) => Box::new(board_at(url).await),
            None => Box::new(DirBoard::new(
                self.fx.state_dir().join("watch").join("board"),
            )),
        }
    }

    /// Each running observer's last report of `plan` on the board: how many
    /// rounds it has made and when the last one began (every round of an
    /// observer whose shared state answers publishes its report, signed,
    /// before it decides: `Watcher::plan_round` in src/watch/mod.rs).
    async fn reported(&self, board: &dyn Board, plan: &str) -> BTreeMap<String, (u64, DateTime)> {
        let mut out = BTreeMap::new();
        for o in &self.observers {
            let key = drctl::watch::shared::report_key(plan, &o.name);
            let Ok(Some(body)) = board.get(&key).await else {
                continue;
            };
            let report = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|e| e["payload"].as_str().map(str::to_string))
                .and_then(|p| serde_json::from_str::<drctl::watch::decide::Report>(&p).ok());
            if let Some(r) = report {
                out.insert(o.name.clone(), (r.round, r.at));
            }
        }
        out
    }

    /// Waits until every running observer has made `n` whole rounds of
    /// `plan` that began after `after`: each decided (and acted) on what it
    /// read after then. A round's report carries the time the round began
    /// and the count of rounds; the first report begun after `after` is
    /// round `r`, and rounds `r..r + n` are complete once round `r + n` is
    /// reported (one observer's rounds follow one another). Machine speed
    /// changes how long that takes, never what it shows. Fails, with what
    /// each observer last reported and their output, after a bound no
    /// working observer comes near.
    async fn rounds_after(&self, plan: &str, after: DateTime, n: u64) {
        let bound = WAIT + ROUND_BOUND * u32::try_from(n).unwrap_or(u32::MAX);
        let board = self.board().await;
        let mut first: BTreeMap<String, u64> = BTreeMap::new();
        let t0 = Instant::now();
        loop {
            let seen = self.reported(board.as_ref(), plan).await;
            for (name, (round, at)) in &seen {
                if *at > after {
                    first.entry(name.clone()).or_insert(*round);
                }
            }
            let done = self.observers.iter().all(|o| {
                let (Some(r), Some((now, _))) = (first.get(&o.name), seen.get(&o.name)) else {
                    return false;
                };
                *now >= r + n
            });
            if done {
                eprintln!(
                    "{}: {:.1?} for {n} round(s) of {plan} by every observer",
                    self.name,
                    t0.elapsed()
                );
                return;
            }
            if t0.elapsed() > bound {
                panic!(
                    "{}: waited {bound:?} for {n} round(s) of {plan} by every observer begun after {after}, in vain; the first reported after it: {first:?}; the last reports (round, began): {seen:?}\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every running observer has made `n` more whole rounds
    /// of `plan` (see [`Scenario::rounds_after`]): what "nothing happens"
    /// is measured in.
    async fn more_rounds(&self, plan: &str, n: u64) {
        self.rounds_after(plan, chrono::Utc::now(), n).await;
    }

    /// The deadline of the episode's proposal on the board, once one is there.
    async fn proposal_deadline(&self) -> Option<DateTime> {
        let board = self.board().await;
        let keys = board.list("episodes/").await.ok()?;
        let key = keys.iter().find(|k| k.ends_with("/proposal.json"))?;
        let body = board.get(key).await.ok()??;
        let envelope: Value = serde_json::from_slice(&body).ok()?;
        let p: drctl::watch::decide::Proposal =
            serde_json::from_str(envelope["payload"].as_str()?).ok()?;
        Some(p.deadline)
    }

    /// Waits for every run to end, then stops the observers.
    async fn stop(&mut self) -> String {
        self.until(RUN_BOUND, |s| s.runs().iter().all(|r| r.outcome.is_some()))
            .await;
        for o in &mut self.observers {
            let _ = o.child.start_kill();
            let _ = o.child.wait().await;
        }
        self.log()
    }
}

/// A failover or failback in the state.
struct Run {
    kind: String,
    started: chrono::DateTime<chrono::Utc>,
    by_watch: bool,
    outcome: Option<String>,
    ended: Option<chrono::DateTime<chrono::Utc>>,
}

/// What one scenario expected and saw.
struct Tally {
    name: &'static str,
    expected: usize,
    started: usize,
}

/// The `[watch]` line of a scenario that must fail over but is not about
/// the RPO gate: the emulators' lag publisher (every 10 s, for every
/// replica of every world the suite has seeded) can fall behind a fresh
/// replica under load, and "replica lag unknown" would then make the
/// standby unfit for a reason the scenario does not test (`target_unfit`
/// does).
const LAG_SLACK: &str = "accept_data_loss = \"30m\"";

fn payments(mode: &str, extra: &str) -> Watched {
    Watched {
        plan: "payments",
        watch: watch_section(mode, extra),
    }
}

/// `w` as observers run from cron (`watch --once`, one process a round)
/// watch it: an observation stays fresh until the observer's next round,
/// however long a loaded machine takes over the processes in between
/// (docs/watch.md: with cron, observations must not go stale between
/// runs), not the 10 s that suit a watcher rounding every second.
fn from_cron(mut w: Watched) -> Watched {
    const DAEMON: &str = "freshness = \"10s\"";
    assert!(w.watch.contains(DAEMON), "{}", w.watch);
    w.watch = w.watch.replace(DAEMON, "freshness = \"10m\"");
    w
}

async fn home_dies_then_recovers() -> Vec<Tally> {
    let mut s = Scenario::new("home dies for everyone", 5).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let endpoints = s.dead.endpoints();
    s.observe(
        "obs-1",
        &[payments("auto", LAG_SLACK)],
        &endpoints,
        None,
        &["--metrics-addr", &metrics],
    );
    for i in 2..=3 {
        s.observe(
            &format!("obs-{i}"),
            &[payments("auto", LAG_SLACK)],
            &endpoints,
            None,
            &[],
        );
    }
    s.wait_for("the observers to say payments is healthy", WAIT, |s| {
        s.said("payments] healthy")
    })
    .await;
    let died = chrono::Utc::now();
    s.region(HOME, false);
    s.wait_for("a failover to start", WAIT, |s| !s.runs().is_empty())
        .await;
    let runs = s.runs();
    let took = (runs[0].started - died).to_std().unwrap_or_default();
    assert!(
        took <= INTERVAL * FAILURES + DETECTION_BOUND,
        "started {took:?} after the home region died"
    );
    assert!(runs[0].by_watch, "the run carries watch's decision");
    s.wait_for("the failover to end", RUN_BOUND, |s| {
        s.runs()[0].outcome.is_some()
    })
    .await;
    let outcome = s.runs()[0].outcome.clone();
    assert_eq!(outcome.as_deref(), Some("succeeded"), "{}", s.stop().await);
    assert!(
        s.told("dev.drctl.watch.failover_started"),
        "people are told"
    );

    // The report reads it: the run's RTO waterfall from the first failed
    // observation, each phase measured, and the watchers' decisions; the
    // document holds to the published schema. The watcher journals its
    // `started` decision once the run has begun, which a loaded machine
    // may write after a fast failover ended: read until it is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let o = s.fx.drctl(&["report", "--format", "json"]).await;
        assert_eq!(o.code, Some(0), "{}", o.all());
        let report = o.json();
        let started = (report["watch"].as_array())
            .is_some_and(|d| d.iter().any(|d| d["decision"] == "started"));
        if started || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    crate::schema::assert_valid(
        &crate::schema::validator(),
        "a report with a watch run",
        &report,
    );
    let row = report["plans"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["plan"] == "payments"))
        .and_then(|p| p["runs"].as_array())
        .and_then(|r| r.iter().find(|r| !r["watch"].is_null()))
        .unwrap_or_else(|| panic!("a run row with its waterfall: {report}"));
    let phases: Vec<&str> = row["watch"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["detect", "decide", "act", "converge"]);
    for p in row["watch"]["phases"].as_array().unwrap() {
        assert!(p["seconds"].is_number(), "{} is measured: {p}", p["name"]);
    }
    let decisions: Vec<&str> = report["watch"]
        .as_array()
        .unwrap_or_else(|| panic!("the watchers' decisions: {report}"))
        .iter()
        .filter_map(|d| d["decision"].as_str())
        .collect();
    assert!(decisions.contains(&"started"), "{decisions:?}");
    let md =
        s.fx.drctl(&["report", "--run", row["run_id"].as_str().unwrap()])
            .await;
    assert!(
        md.out
            .contains("the first failed observation (`drctl watch`"),
        "{}",
        md.all()
    );

    // /metrics scrapes cleanly with Prometheus's own parsers (OpenMetrics
    // and the classic text format), once obs-1 has read what each metric
    // shows (a replica's lag: the emulators publish it every 10 s).
    let body = s.scrape_with(&metrics, METRICS).await;
    parse_metrics(&body);
    assert!(
        body.contains("drctl_watch_quorum_reached{plan=\"payments\",region=\"us-west-2\"}")
            && body.contains("drctl_watch_down_votes{plan=\"payments\",region=\"us-west-2\"}")
            && body.contains("drctl_watch_decisions_total{plan=\"payments\""),
        "{body}"
    );
    assert!(scrape(&metrics, "/healthz").await.starts_with("ok"));

    // Home recovers: a failback is proposed once home has been healthy for
    // longer than the failover took, and watch never starts one.
    let failover_took = s.runs()[0]
        .ended
        .map(|e| (e - died).to_std().unwrap_or_default());
    let healed = Instant::now();
    s.region(HOME, true);
    // It waits out at least as long as the failover took.
    let bound = WAIT + failover_took.unwrap_or_default() * 2;
    s.wait_for("a failback to be proposed", bound, |s| {
        s.said("failback_proposed")
    })
    .await;
    let waited = healed.elapsed();
    // Proposed, never started: a few more rounds by every observer.
    s.more_rounds("payments", 3).await;
    let log = s.stop().await;
    if let Some(took) = failover_took {
        assert!(
            waited >= took.saturating_sub(INTERVAL * 2),
            "proposed after {waited:?}, the failover took {took:?}"
        );
    }
    let started = s.runs().iter().filter(|r| r.by_watch).count();
    assert!(
        s.runs().iter().all(|r| r.kind != "failback"),
        "never failed back: {log}"
    );
    vec![
        Tally {
            name: s.name,
            expected: 1,
            started,
        },
        Tally {
            name: "home recovers",
            expected: 0,
            started: s.runs().iter().filter(|r| r.kind == "failback").count(),
        },
    ]
}

async fn one_observer_partitioned() -> Vec<Tally> {
    let mut s = Scenario::new("one observer partitioned", 5).await;
    let endpoints = s.dead.endpoints();
    for i in 1..=2 {
        s.observe(
            &format!("obs-{i}"),
            &[payments("auto", "")],
            &endpoints,
            None,
            &[],
        );
    }
    // obs-3's path to the home region is broken: its API calls signed for
    // us-west-2 are reset, and its probes go through a proxy that fails them.
    let cut = Proxied::start(false).await;
    cut.proxy_for("AWS_ENDPOINT_URL_RDS")
        .inject(Match::Region(HOME), Fault::Reset, usize::MAX);
    let probes = FaultProxy::start(&s.checks).await;
    probes.inject(Match::Any, Fault::Reset, usize::MAX);
    s.observe(
        "obs-3",
        &[payments("auto", "")],
        &cut.endpoints(),
        Some(&probes.url()),
        &[],
    );
    s.wait_for("a warning naming obs-3", WAIT, |s| {
        s.said("obs-3 sees us-west-2 down")
    })
    .await;
    s.wait_for("the warning to be told", WAIT, |s| {
        s.told("dev.drctl.watch.observer_suspect")
    })
    .await;
    // No failover: six more rounds by every observer.
    s.more_rounds("payments", 6).await;
    let _ = s.stop().await;
    s.tally(0)
}

async fn flapping() -> Vec<Tally> {
    let mut s = Scenario::new("flapping health", 5).await;
    s.health.flapping.store(true, Ordering::SeqCst);
    s.three(&[payments("auto", "")]);
    // Nothing happens in a dozen rounds by every observer, each with a
    // failed check every other round (`FAILURES` in a row judge it down).
    s.more_rounds("payments", 12).await;
    assert!(s.said("payments]"), "the observers ran: {}", s.log());
    // `--once` (cron): one round, one JSON document, exit 0; its report
    // joins the three others (still running: theirs are fresh).
    let plans = s.plans_for("obs-cron", &[payments("auto", "")], &s.checks);
    let once = s
        .command("obs-cron", &plans, &s.dead.endpoints())
        .args([
            "watch",
            "--once",
            "--observer",
            "obs-cron",
            "--plan",
            "payments",
            "--output",
            "json",
        ])
        .output()
        .await
        .expect("drctl watch --once");
    let out = String::from_utf8_lossy(&once.stdout).to_string();
    let err = String::from_utf8_lossy(&once.stderr).to_string();
    assert_eq!(once.status.code(), Some(0), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let _ = s.stop().await;
    assert_eq!(doc[0]["plan"], "payments", "{doc}");
    assert!(
        doc[0]["observers"].as_array().is_some_and(|o| o.len() == 4),
        "its report joins the three others: {doc}"
    );
    s.tally(0)
}

async fn target_unfit() -> Vec<Tally> {
    // ledger's replica lags 20m behind (the seeded world); its tier's RPO is 15m.
    let mut s = Scenario::new("target unfit", 5).await;
    let ledger = Watched {
        plan: "ledger",
        watch: watch_section("auto", ""),
    };
    s.three(&[ledger]);
    s.region(HOME, false);
    s.wait_for("a notification saying why the target is unfit", WAIT, |s| {
        s.told("dev.drctl.watch.unfit")
    })
    .await;
    // No failover: a few more rounds by every observer.
    s.more_rounds("ledger", 3).await;
    let log = s.stop().await;
    // Why: the lag above the RPO, or, when the emulators' lag publisher has
    // not yet published a datapoint for this fresh replica (a loaded CI
    // machine), the lag unknown. Both are unfit; neither fails over.
    assert!(
        s.told("above the RPO 15m") || s.told("replica lag unknown"),
        "{log}"
    );
    s.tally(0)
}

async fn racing() -> Vec<Tally> {
    // Two watchers, started at the same moment, on a home already dead.
    let mut s = Scenario::new("two watchers racing", 5).await;
    s.region(HOME, false);
    let endpoints = s.dead.endpoints();
    for i in 1..=2 {
        s.observe(
            &format!("obs-{i}"),
            &[payments("auto", LAG_SLACK)],
            &endpoints,
            None,
            &[],
        );
    }
    s.wait_for("a failover to start", WAIT, |s| !s.runs().is_empty())
        .await;
    // Rounds enough for the other watcher to start a second one, had it
    // raced past the start claim.
    s.more_rounds("payments", 5).await;
    let _ = s.stop().await;
    s.tally(1)
}

async fn vetoed() -> Vec<Tally> {
    let mut s = Scenario::new("a veto in the window", 5).await;
    s.three(&[payments(
        "propose",
        &format!("veto_window = \"8s\"\n{LAG_SLACK}"),
    )]);
    s.region(HOME, false);
    s.wait_for("a failover to be proposed", WAIT, |s| {
        s.said("payments] proposed")
    })
    .await;
    let o = s
        .cli(&[
            "watch",
            "veto",
            "--plan",
            "payments",
            "--reason",
            "known network maintenance",
        ])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    s.wait_for("the observers to see the veto", WAIT, |s| {
        s.said("payments] vetoed")
    })
    .await;
    // The veto window ends (the proposal's deadline), and every observer
    // makes rounds after it: none starts the failover.
    // (An observer says "proposed" once the proposal is on the board.)
    let deadline = s
        .proposal_deadline()
        .await
        .unwrap_or_else(|| panic!("the proposal on the board: {}", s.log()));
    s.rounds_after("payments", deadline, 2).await;
    // `watch status` shows each observer's last observation, the quorum and
    // what watch would do now, from the shared state alone.
    let st = s.cli(&["watch", "status", "--output", "json"]).await;
    assert_eq!(st.code, Some(0), "{}", st.all());
    let doc = st.json();
    let p = &doc[0];
    assert_eq!(p["plan"], "payments", "{doc}");
    assert_eq!(p["decision"], "vetoed", "{doc}");
    assert_eq!(p["observers"].as_array().map(Vec::len), Some(3), "{doc}");
    assert!(p["down"].as_array().is_some_and(|d| d.len() >= 2), "{doc}");
    // Signed with the operators' run key, and shown so.
    let id = s.run_key.public().id();
    assert!(
        p["why"]
            .as_str()
            .is_some_and(|w| w.contains(&format!("signed by the run key {id}"))),
        "{doc}"
    );
    let text = s.cli(&["watch", "status"]).await;
    assert!(text.out.contains("watch would: vetoed"), "{}", text.all());
    let log = s.stop().await;
    assert!(s.told("dev.drctl.watch.vetoed"), "{log}");
    s.tally(0)
}

async fn velocity_cap() -> Vec<Tally> {
    let mut s = Scenario::new("velocity cap", 1).await;
    let ledger = Watched {
        plan: "ledger",
        watch: watch_section("auto", "accept_data_loss = \"30m\""),
    };
    s.three(&[payments("auto", LAG_SLACK), ledger]);
    s.region(HOME, false);
    s.wait_for("the second plan to be proposed, not started", WAIT, |s| {
        s.said("] capped")
    })
    .await;
    // Still one failover after a few more rounds by every observer (a
    // round is of every plan it watches).
    s.more_rounds("payments", 4).await;
    let _ = s.stop().await;
    s.tally(1)
}

/// The metric families a watcher's scrape must hold, each with a sample.
const METRICS: &[&str] = &[
    "drctl_plan_ready",
    "drctl_watch_observations",
    "drctl_watch_quorum",
    "drctl_watch_quorum_reached",
    "drctl_replica_lag_seconds",
    "drctl_watch_state_reachable",
];

/// The families of `names` without a sample in the scrape `body`.
fn missing<'a>(body: &str, names: &[&'a str]) -> Vec<&'a str> {
    let sampled: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    names
        .iter()
        .filter(|n| !sampled.contains(**n) && !sampled.contains(format!("{n}_total").as_str()))
        .copied()
        .collect()
}

impl Scenario {
    /// Scrapes `/metrics` at `addr` until every family of `names` has a
    /// sample (each is set by a round that read what it shows); the scrape.
    async fn scrape_with(&self, addr: &str, names: &[&str]) -> String {
        let t0 = Instant::now();
        loop {
            let body = scrape(addr, "/metrics").await;
            let lacking = missing(&body, names);
            if lacking.is_empty() {
                eprintln!("{}: {:.1?} for a full scrape", self.name, t0.elapsed());
                return body;
            }
            if t0.elapsed() > WAIT {
                panic!(
                    "{}: waited {WAIT:?} for a scrape with a sample of each of {names:?}, in vain: none of {lacking:?} in\n{body}\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn scrape(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics server");
    sock.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Parses the scrape with the Prometheus Python client's own parsers.
fn parse_metrics(body: &str) {
    let venv = std::env::var_os("DRCTL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/.venv"));
    let need: Vec<String> = METRICS.iter().map(|m| format!("'{m}'")).collect();
    let script = format!(
        "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as om\nfrom prometheus_client.parser import text_string_to_metric_families as classic\nt = sys.stdin.read()\nfams = list(om(t))\nlist(classic(t.replace('# EOF\\n', '')))\nnames = {{f.name for f in fams}}\nneed = {{{}}}\nmissing = need - names\nassert not missing, missing\nprint(len(fams))\n",
        need.join(", ")
    );
    let mut child = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python from the emulators' venv");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the scrape parses: {}\n{body}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The chaos matrix of docs/watch.md, every scenario (run from
/// `crate::chaos`, which says why there).
pub(crate) async fn chaos_matrix() {
    // Two waves, so that a loaded machine still answers every observer.
    let (a, b, c) = tokio::join!(
        home_dies_then_recovers(),
        one_observer_partitioned(),
        flapping()
    );
    let (d, e, f, g) = tokio::join!(target_unfit(), racing(), vetoed(), velocity_cap());
    let all: Vec<Tally> = [a, b, c, d, e, f, g].into_iter().flatten().collect();
    let false_failovers: usize = all
        .iter()
        .map(|t| t.started.saturating_sub(t.expected))
        .sum();
    let missed: usize = all
        .iter()
        .map(|t| t.expected.saturating_sub(t.started))
        .sum();
    let table: Vec<String> = all
        .iter()
        .map(|t| {
            format!(
                "{:<28} expected {} started {}",
                t.name, t.expected, t.started
            )
        })
        .collect();
    eprintln!("watch matrix:\n{}", table.join("\n"));
    assert_eq!((false_failovers, missed), (0, 0), "{table:#?}");
}

/// The runs journaled in the scenario's shared state (read straight from
/// the emulator, not through the proxies).
async fn shared_runs(url: &str) -> Vec<String> {
    use drctl::journal::JournalStore;
    let store = drctl::state::objects::ObjectJournalStore::new(
        world::clouds().await.objects,
        crate::world::STANDBY,
        drctl::cloud::ObjectUrl::parse(url).expect("state url"),
    );
    store.list().await.unwrap_or_default()
}

/// The regression `lost_claim_answer_read_as_another_observers_claim`
/// (run from `crate::chaos`, which says why there): three
/// observers on a state in S3; the answer to the winning observer's
/// create-only start claim (`start.json`) is lost after S3 took it (a
/// watcher tries each call once: the write fails; retried, it would find
/// the claim, 412). The observer used to give up, and every observer then
/// read the claim as started while nothing ran. Now it reads the claim
/// back, finds its own bytes, and the failover starts exactly once.
pub(crate) async fn lost_claim_answer() {
    let mut s = Scenario::on_s3("a start claim whose answer is lost", 5).await;
    let url = s.shared.clone().expect("shared state");
    let claim = Match::MethodPath("PUT", "/start.json".into());
    let store = s.dead.proxy_for("AWS_ENDPOINT_URL_S3");
    store.inject(claim.clone(), Fault::DropAfterForward, 1);
    s.three(&[payments("auto", LAG_SLACK)]);
    s.region(HOME, false);
    let t0 = Instant::now();
    while t0.elapsed() < WAIT && shared_runs(&url).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Rounds enough for a second start, had the claim been misread.
    s.more_rounds("payments", 8).await;
    let runs = shared_runs(&url).await;
    let store = s.dead.proxy_for("AWS_ENDPOINT_URL_S3");
    let dropped = store.unspent() == 0;
    let claims = store.requests(claim);
    let log = s.stop().await;
    assert!(dropped, "the claim's answer was lost: {log}");
    assert!(claims >= 1, "{claims}\n{log}");
    assert_eq!(runs.len(), 1, "one failover: {runs:?}\n{log}");
    assert!(!s.said("start_failed"), "{log}");
}

/// A "succeeded failover of payments to `target`" journal, as anyone who
/// can write to the state bucket can add one without any key: its records
/// written straight into the store (not through drctl, under no lease),
/// dated half an hour ago. Its id.
async fn forge_failover(url: &str, target: &str) -> String {
    use drctl::journal::JournalStore;
    use drctl::journal::event::{Event, Outcome, PlanRef, Record, RunKind};
    let store = drctl::state::objects::ObjectJournalStore::new(
        world::clouds().await.objects,
        crate::world::STANDBY,
        drctl::cloud::ObjectUrl::parse(url).expect("state url"),
    );
    let id = drctl::journal::new_run_id("payments");
    let at = chrono::Utc::now() - chrono::Duration::minutes(30);
    let records = [
        Record {
            seq: 0,
            at,
            prev: String::new(),
            event: Event::RunStarted {
                run_id: id.clone(),
                kind: RunKind::Failover,
                target: target.into(),
                plans: vec![PlanRef {
                    name: "payments".into(),
                    digest: String::new(),
                }],
                operator: Some("arn:aws:iam::000000000000:user/oncall".into()),
                host: "bastion".into(),
                pid: 4242,
                flags: serde_json::json!({"mode": "failover", "emergency": true}),
                declared_at: Some(at),
                steps: Vec::new(),
                nonce: None,
            },
            fence: Default::default(),
            late: None,
        },
        Record {
            seq: 1,
            at: at + chrono::Duration::minutes(4),
            prev: String::new(),
            event: Event::RunFinished {
                outcome: Outcome::Succeeded,
                summary: serde_json::json!({}),
            },
            fence: Default::default(),
            late: None,
        },
    ];
    store.create(&id).await.expect("forge: create");
    for (seq, r) in records.iter().enumerate() {
        let line = serde_json::to_string(r).expect("a record");
        store
            .append(&id, seq as u64, &line)
            .await
            .expect("forge: append");
    }
    id
}

/// Issue 29, the forged journal: a bucket writer adds a "succeeded failover
/// to us-east-1" journal to the shared state (S3) while payments' primary
/// in us-west-2 is healthy; us-east-1, an idle standby, fails its checks.
/// By the journals alone three observers would judge us-east-1 down by
/// quorum and fail payments over to eu-west-1, beside its healthy primary.
/// The journal is not signed by the run key the operators list, so every
/// observer leaves it out: rounds of `watch --once` from three observers
/// move nothing (no run, no proposal, no start claim), and `watch status`,
/// text and JSON, names the journal left out. (A journal that verifies but
/// that the cloud contradicts, one a holder of the run key wrote, makes
/// watch refuse: `src/watch/tests.rs`,
/// `a_forged_failover_journal_moves_nothing_and_is_named`.)
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_failover_journal_moves_nothing_and_watch_status_names_it() {
    crate::needs_emulators!();
    let s = Scenario::on_s3("a forged failover journal", 5).await;
    let url = s.shared.clone().expect("shared state");
    let forged = forge_failover(&url, world::STANDBY).await;
    s.health.set(world::STANDBY, false);
    let watched = [from_cron(payments("auto", LAG_SLACK))];
    let endpoints = world::endpoints_file();
    let mut log = String::new();
    // Enough rounds for a quorum to see us-east-1 fail `FAILURES` times
    // in a row, and more; each observer carries its streak on from its
    // last report (fresh for as long as cron's rounds are apart).
    for round in 0..FAILURES + 2 {
        let runs = (1..=3).map(|i| {
            let name = format!("obs-{i}");
            let plans = s.plans_for(&name, &watched, &s.checks);
            let mut cmd = s.command(&name, &plans, &endpoints);
            cmd.args(["watch", "--once", "--observer", &name, "--plan", "payments"]);
            async move { (name, cmd.output().await.expect("drctl watch --once")) }
        });
        for (name, o) in futures::future::join_all(runs).await {
            let out = String::from_utf8_lossy(&o.stdout);
            let err = String::from_utf8_lossy(&o.stderr);
            log.push_str(&format!("--- round {round}, {name}\n{out}{err}"));
            assert_eq!(o.status.code(), Some(0), "{log}");
        }
        // A round is over when its process has exited (`--once` waits for
        // a failover it started): the next follows at once, as cron's
        // would, only sooner (how far apart changes nothing decided).
    }
    // Nothing moved: the forged journal is the only run, the board holds
    // no proposal and no start claim, and the standby is still a replica.
    let runs = shared_runs(&url).await;
    assert_eq!(runs, std::slice::from_ref(&forged), "no run started: {log}");
    let board = drctl::state::board::ObjectBoard::new(
        world::clouds().await.objects,
        world::STANDBY,
        drctl::cloud::ObjectUrl::parse(&url)
            .expect("state url")
            .join("watch/board"),
    );
    use drctl::state::board::Board;
    let episodes = board.list("episodes/").await.expect("the board lists");
    assert!(
        !episodes
            .iter()
            .any(|k| k.ends_with("/proposal.json") || k.ends_with("/start.json")),
        "{episodes:?}\n{log}"
    );
    let db = world::clouds()
        .await
        .database
        .describe_instance(world::STANDBY, &s.fx.id("payments-db-use1"))
        .await
        .expect("describe")
        .expect("the standby exists");
    assert!(
        matches!(db.role, drctl::cloud::DbRole::Replica(_)),
        "{db:?}"
    );
    // Each observer said why, naming the journal: it is not signed by the
    // run key the scenario lists, so it is left out of every count.
    assert!(
        log.contains(&format!(
            "ignored on the board: journal {forged}: does not verify"
        )),
        "the observers name the forged journal: {log}"
    );
    // `watch status` names it too, text and JSON, and by the journals it
    // counts payments still serves from us-west-2.
    let text = s.cli(&["watch", "status", "--plan", "payments"]).await;
    assert_eq!(text.code, Some(0), "{}", text.all());
    assert!(
        text.out.contains(&format!(
            "ignored on the board: journal {forged}: does not verify"
        )),
        "{}",
        text.all()
    );
    let json = s
        .cli(&["watch", "status", "--plan", "payments", "--output", "json"])
        .await;
    assert_eq!(json.code, Some(0), "{}", json.all());
    let doc = json.json();
    let p = &doc[0];
    assert!(
        p["rejected"].as_array().is_some_and(|r| r
            .iter()
            .any(|x| x.as_str().is_some_and(|x| x.contains(&forged)))),
        "{doc}"
    );
    assert_eq!(p["active"], world::HOME, "{doc}");
    assert!(p["command"].is_null(), "{doc}");
}

/// The scenario's board in S3, read and written straight at the emulator
/// (as a bucket writer without any observer's key would).
async fn board_at(url: &str) -> drctl::state::board::ObjectBoard {
    let base = drctl::cloud::ObjectUrl::parse(url).expect("state url");
    drctl::state::board::ObjectBoard::new(
        world::clouds().await.objects,
        crate::world::STANDBY,
        base.join("watch/board"),
    )
}

/// `watch --once --output json` as `observer`: its round's document.
async fn once(s: &Scenario, observer: &str, plans: &Path, endpoints: &Path) -> Value {
    let o = s
        .command(observer, plans, endpoints)
        .args([
            "watch",
            "--once",
            "--observer",
            observer,
            "--plan",
            "payments",
            "--output",
            "json",
        ])
        .output()
        .await
        .expect("drctl watch --once");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

/// Forgeries on the board in S3, against two listed observers (obs-1 sees
/// home down: its path there is cut; obs-2 sees it up): a copy of obs-1's
/// report under another listed observer's name, a report signed by an
/// unlisted key, reports under new names signed by obs-1's own key (one
/// observer trying to make a quorum alone), and a proposal made with its
/// deadline already past, signed by obs-1's key. Had any counted, home
/// would be down by quorum and the proposal would start a failover at once.
/// None moves anything; `watch --once` and `watch status` name each, with
/// why.
#[tokio::test(flavor = "multi_thread")]
async fn forgeries_on_the_board_are_ignored_and_named_by_watch_once_and_status() {
    crate::needs_emulators!();
    let s = Scenario::on_s3("forgeries on the board", 5).await;
    let url = s.shared.clone().expect("shared state");
    let watched = [from_cron(payments("propose", LAG_SLACK))];
    // obs-1's path to home is cut (its API calls signed for home reset, its
    // probes reset); obs-2's is not.
    let cut = Proxied::start(false).await;
    cut.proxy_for("AWS_ENDPOINT_URL_RDS")
        .inject(Match::Region(HOME), Fault::Reset, usize::MAX);
    let probes = FaultProxy::start(&s.checks).await;
    probes.inject(Match::Any, Fault::Reset, usize::MAX);
    let plans1 = s.plans_for("obs-1", &watched, &probes.url());
    let plans2 = s.plans_for("obs-2", &watched, &s.checks);
    let mut doc = Value::Null;
    // Rounds as from cron, each over when its process has exited.
    for _ in 0..FAILURES {
        doc = once(&s, "obs-1", &plans1, &cut.endpoints()).await;
    }
    assert_eq!(doc[0]["down"], serde_json::json!(["obs-1"]), "{doc}");
    let episode = doc[0]["episode"].as_str().expect("an episode").to_string();

    // The forgeries.
    use drctl::state::board::Board as _;
    use drctl::watch::shared::{episode_key, report_key, seal};
    let board = board_at(&url).await;
    let mine = board
        .get(&report_key("payments", "obs-1"))
        .await
        .unwrap()
        .expect("obs-1's report");
    board
        .put(&report_key("payments", "obs-cron"), mine.clone())
        .await
        .unwrap();
    let envelope: Value = serde_json::from_slice(&mine).unwrap();
    let report: drctl::watch::decide::Report =
        serde_json::from_str(envelope["payload"].as_str().unwrap()).unwrap();
    let renamed = |name: &str| drctl::watch::decide::Report {
        observer: name.to_string(),
        ..report.clone()
    };
    let stranger = drctl::sign::SecretKey::generate();
    let at = report_key("payments", "obs-3");
    board
        .put(&at, seal(Some(&stranger), &at, &renamed("obs-3")))
        .await
        .unwrap();
    let obs1 = &s.keys["obs-1"];
    for name in ["obs-x1", "obs-x2", "obs-x3"] {
        let at = report_key("payments", name);
        board
            .put(&at, seal(Some(obs1), &at, &renamed(name)))
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    let past = now - chrono::Duration::minutes(5);
    let proposal = drctl::watch::decide::Proposal {
        observer: "obs-1".into(),
        created: now,
        region: HOME.into(),
        target: "us-east-1".into(),
        deadline: past,
        detected_at: past,
        quorum_at: past,
        votes: vec!["obs-1".into(), "obs-x1".into()],
    };
    let at = episode_key(&episode, "proposal");
    assert!(
        board
            .create(&at, seal(Some(obs1), &at, &proposal))
            .await
            .unwrap()
    );

    // obs-2 reports home up; obs-1 goes on seeing it down.
    let two = once(&s, "obs-2", &plans2, &s.dead.endpoints()).await;
    let one = once(&s, "obs-1", &plans1, &cut.endpoints()).await;
    // `watch status` with the observers' plans (propose mode), and no
    // observer key: it only reads.
    let status_of = |json: bool| {
        let mut cmd = s.command("nobody", &plans2, &s.dead.endpoints());
        cmd.args(["watch", "status", "--plan", "payments"]);
        if json {
            cmd.args(["--output", "json"]);
        }
        cmd.output()
    };
    let st = crate::fixture::Ran::from_output(status_of(true).await.unwrap());
    assert_eq!(st.code, Some(0), "{}", st.all());
    let status = st.json();
    let text = crate::fixture::Ran::from_output(status_of(false).await.unwrap());
    assert_eq!(text.code, Some(0), "{}", text.all());
    // No observer runs beside these: what the rounds above started (had
    // they started anything) is journaled by the time their processes
    // exited (`--once` waits for a failover it started).
    let runs = shared_runs(&url).await;

    assert!(runs.is_empty(), "nothing started: {runs:?}\n{one}");
    for doc in [&one, &status] {
        let p = &doc[0];
        assert_eq!(p["down"], serde_json::json!(["obs-1"]), "{doc}");
        assert_ne!(p["decision"], "started", "{doc}");
        assert_ne!(p["decision"], "proposed", "{doc}");
        let counted: Vec<&str> = p["observers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["observer"].as_str())
            .collect();
        assert_eq!(counted, ["obs-1", "obs-2"], "{doc}");
        let rejected: Vec<&str> = p["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let names = |needle: &str| rejected.iter().any(|r| r.contains(needle));
        let id = stranger.public().id();
        for expected in [
            "reports/payments/obs-cron.json: names obs-1: a copy of obs-1's report".to_string(),
            format!("reports/payments/obs-3.json: signed by key {id}, which is not listed"),
            "reports/payments/obs-x1.json: obs-x1 is not a listed observer (signed by observer obs-1)".to_string(),
            "reports/payments/obs-x3.json: obs-x3 is not a listed observer".to_string(),
            format!("episodes/{episode}/proposal.json: its deadline"),
            "less than the veto window (2m)".to_string(),
        ] {
            assert!(names(&expected), "{expected} in {rejected:#?}");
        }
    }
    assert_eq!(two[0]["down"], serde_json::json!(["obs-1"]), "{two}");
    assert!(
        text.out
            .contains("ignored on the board: reports/payments/obs-cron.json: names obs-1"),
        "{}",
        text.all()
    );
    assert!(
        text.out.contains(&format!(
            "ignored on the board: episodes/{episode}/proposal.json: its deadline"
        )),
        "{}",
        text.all()
    );
}

/// `drctl ARGS` with no emulator, in `dir`, with `env`.
fn drctl_plain(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> crate::fixture::Ran {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never"])
        .args(args)
        .current_dir(dir)
        .env_remove("DRCTL_OBSERVER_KEY")
        .env_remove("DRCTL_RUN_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::fixture::Ran::from_output(cmd.output().expect("drctl runs"))
}

#[test]
fn keygen_writes_the_secret_once_with_mode_0600_and_prints_the_line_to_list() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("obs.key");
    let o = drctl_plain(
        dir.path(),
        &["watch", "keygen", "--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.code, Some(0), "{}", o.all());
    let secret = std::fs::read_to_string(&out).unwrap();
    assert!(!o.out.contains(secret.trim()), "the secret is not printed");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = drctl::sign::SecretKey::parse(&secret, "file").unwrap();
    assert!(
        o.out.contains(&format!("keys = [\"{}\"]", key.public())),
        "{}",
        o.all()
    );
    // Never replaces a file.
    let again = drctl_plain(
        dir.path(),
        &["watch", "keygen", "--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(again.code, Some(2), "{}", again.all());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), secret);
    // Without --out: the secret on stdout, in the form DRCTL_OBSERVER_KEY takes.
    let printed = drctl_plain(dir.path(), &["watch", "keygen"], &[]);
    assert_eq!(printed.code, Some(0), "{}", printed.all());
    assert!(
        printed.out.contains("\ned25519-secret:"),
        "{}",
        printed.all()
    );
}

/// Regression (`the_demos_run_key_was_made_as_an_observers`): the demo
/// made its run key with `watch keygen`, whose words told the reader to
/// give it to an observer. `keygen run` says the run key's secret is for
/// those who run failovers, never an observer, and prints its public half
/// as the `[keys] run_public` line; `keygen observer` says the observer's
/// words, as `watch keygen` does.
#[test]
fn keygen_says_who_holds_a_run_key_and_who_an_observer_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.key");
    let o = drctl_plain(
        dir.path(),
        &["keygen", "run", "--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.code, Some(0), "{}", o.all());
    let secret = std::fs::read_to_string(&out).unwrap();
    let key = drctl::sign::SecretKey::parse(&secret, "file").unwrap();
    assert!(
        o.out
            .contains(&format!("run_public = [\"{}\"]", key.public())),
        "{}",
        o.all()
    );
    assert!(
        o.err.contains("start, resume and record runs")
            && o.err.contains("never an observer that only observes"),
        "{}",
        o.all()
    );
    assert!(
        !o.all().contains("give it to the observer only"),
        "{}",
        o.all()
    );
    let obs = drctl_plain(dir.path(), &["keygen", "observer"], &[]);
    assert_eq!(obs.code, Some(0), "{}", obs.all());
    assert!(
        obs.out.contains("that observer only") && obs.out.contains("keys = [\"ed25519:"),
        "{}",
        obs.all()
    );
}

/// The operators' drctl.toml listing `listed` observers (name, key), in `dir`.
fn config_listing(dir: &Path, listed: &[(&str, &drctl::sign::PublicKey)]) -> PathBuf {
    let text: String = listed
        .iter()
        .map(|(n, k)| format!("[[watch.observers]]\nname = \"{n}\"\nkeys = [\"{k}\"]\n\n"))
        .collect();
    let path = dir.join("drctl.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn watch_refuses_to_start_unless_its_own_key_is_listed_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let (mine, other) = (
        drctl::sign::SecretKey::generate(),
        drctl::sign::SecretKey::generate(),
    );
    let config = config_listing(
        dir.path(),
        &[("obs-a", &other.public()), ("obs-b", &mine.public())],
    );
    let run = |observer: &str, key: &str| {
        drctl_plain(
            dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--plans",
                plans.to_str().unwrap(),
                "--state-dir",
                dir.path().join("state").to_str().unwrap(),
                "watch",
                "--once",
                "--observer",
                observer,
            ],
            &[("DRCTL_OBSERVER_KEY", key)],
        )
    };
    let secret = mine.to_text();
    // Its key is listed under another observer's name.
    let o = run("obs-a", &secret);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.err
            .contains("is not listed under obs-a (it is listed under obs-b)"),
        "{}",
        o.all()
    );
    assert!(
        o.err.contains(&mine.public().to_text()),
        "the hint names the key: {}",
        o.all()
    );
    // Not listed at all.
    let o = run("obs-c", &secret);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.err.contains("obs-c is not a listed observer"),
        "{}",
        o.all()
    );
    assert!(o.err.contains("[[watch.observers]]"), "{}", o.all());
    // No key.
    let o = run("obs-b", "");
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.err.contains("drctl watch keygen"), "{}", o.all());
    // The shared-key scheme is gone: a shared secret is not a key.
    let o = run("obs-b", "watch-test-key-0123456789abcdef");
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.err.contains("ed25519-secret:"), "{}", o.all());
}

#[test]
fn an_observer_listed_twice_or_a_key_under_two_observers_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let k = drctl::sign::SecretKey::generate().public();
    let l = drctl::sign::SecretKey::generate().public();
    for (listed, says) in [
        (vec![("obs-a", &k), ("obs-a", &l)], "listed twice"),
        (
            vec![("obs-a", &k), ("obs-b", &k)],
            "is listed under `obs-a` too",
        ),
    ] {
        let config = config_listing(dir.path(), &listed);
        let o = drctl_plain(
            dir.path(),
            &["--config", config.to_str().unwrap(), "watch", "status"],
            &[],
        );
        assert_eq!(o.code, Some(2), "{}", o.all());
        assert!(o.err.contains(says), "{}", o.all());
    }
}

/// Regression (issue 39: a watch that may start failovers found out at the
/// outage that it could not sign their journals). A plan in `auto` mode,
/// public run keys listed, no run key held: `watch` refuses to start,
/// naming the plan and what to give it. Without keys listed it starts and
/// warns that journals are unauthenticated.
#[test]
fn a_watch_that_may_fail_over_refuses_to_start_without_the_run_key_when_keys_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    for name in ["payments.toml", "tiers.toml"] {
        let mut text = std::fs::read_to_string(root.join(name)).unwrap();
        if name == "payments.toml" {
            text.push_str(&watch_section("auto", ""));
        }
        std::fs::write(plans.join(name), text).unwrap();
    }
    let mine = drctl::sign::SecretKey::generate();
    let config = config_listing(dir.path(), &[("obs-a", &mine.public())]);
    let run = |public: &str| {
        drctl_plain(
            dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--plans",
                plans.to_str().unwrap(),
                "--state-dir",
                dir.path().join("state").to_str().unwrap(),
                "watch",
                "--once",
                "--observer",
                "obs-a",
            ],
            &[
                ("DRCTL_OBSERVER_KEY", &mine.to_text()),
                ("DRCTL_RUN_PUBLIC", public),
            ],
        )
    };
    let run_key = drctl::sign::SecretKey::generate().public().to_text();
    let o = run(&run_key);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.err.contains("payments") && o.err.contains("does not hold the run key"),
        "{}",
        o.all()
    );
    assert!(o.err.contains("DRCTL_RUN_KEY"), "the hint: {}", o.all());
    let o = run("");
    assert!(
        o.err.contains("journals are unauthenticated"),
        "{}",
        o.all()
    );
}
