//! What shared state costs (not a timed test): journal appends and reads on a
//! local directory, on S3 (LocalStack) and on GCS (fake-gcs-server).
//!
//! For each store it takes a plan lease (as a run does), then appends
//! `--records` records to one journal with the lease as the journal's fence
//! (on shared state every append reads the lease, writes the record
//! create-only, and moves the head forward in the background), and reports:
//!
//! - per append: median and 95th percentile (this is what a step pays
//!   twice on the critical path: its `step_started` and its end);
//! - reading that journal back and verifying its chain (`runs show`,
//!   `runs resume`, `audit verify` each do this);
//! - listing and reading `--runs` journals of 10 records (`runs list`).
//!
//! ```text
//! localstack/up
//! cargo bench --profile dev --bench state
//! cargo bench --profile dev --bench state -- --records 300 --runs 20 --stores dir,s3,gs
//! cargo bench --profile dev --bench state -- --stores dir,dir+key,s3,s3+key   # signed journals
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl::journal::{Event, Journal, RunKind};
use drctl::state::{Holder, LeaseTimes, LockSet, State, StateLocation, Takeover};
use futures::StreamExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[path = "support/mod.rs"]
mod support;

const BUCKET: &str = "drctl-bench-state";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn event(plan: &str, i: usize) -> Event {
    Event::StepStarted {
        step: drctl::journal::StepName::of(plan, &format!("step-{i}"), None).expect("a step name"),
        attempt: 1,
    }
}

struct Row {
    store: String,
    append_p50: Duration,
    append_p95: Duration,
    read: Duration,
    list: Duration,
}

async fn measure(name: &str, state: State, records: usize, runs: usize) -> Result<Row, BoxError> {
    let stamp = drctl::journal::new_run_id("bench");
    let plan = format!("bench-{}", &stamp[stamp.len() - 4..]);
    let holder = Holder::current(&stamp, RunKind::Drill);
    let lease = state
        .locks
        .acquire(&plan, &holder, Takeover::default())
        .await?;
    let mut j = Journal::create(state.journals.clone(), &stamp).await?;
    if state.locks.fenced() {
        j.set_fence(Arc::new(LockSet(vec![lease.lock.clone()])));
    }
    let mut times = Vec::with_capacity(records);
    for i in 0..records {
        let t = Instant::now();
        j.append(event(&plan, i)).await?;
        times.push(t.elapsed());
    }
    j.flush().await?;
    lease.lock.release().await?;
    times.sort();

    let t = Instant::now();
    // With run keys listed, the authenticated read (every signature).
    let read = drctl::journal::read_authenticated(state.journals.as_ref(), &stamp).await?;
    let read_time = t.elapsed();
    assert_eq!(read.len(), records);

    // `runs list`: `runs` more journals of 10 records, then list and read all.
    for r in 0..runs {
        let id = format!("{stamp}-{r:03}");
        let mut j = Journal::create(state.journals.clone(), &id).await?;
        for i in 0..10 {
            j.append(event(&plan, i)).await?;
        }
        j.flush().await?;
    }
    let t = Instant::now();
    let ids = state.journals.list().await?;
    let store = state.journals.clone();
    let texts: Vec<_> = futures::stream::iter(ids.iter().map(|id| {
        let store = store.clone();
        async move { store.read(id).await }
    }))
    .buffered(16)
    .collect()
    .await;
    let list_time = t.elapsed();
    assert!(texts.iter().all(Result::is_ok));
    assert!(ids.len() > runs);
    Ok(Row {
        store: name.to_string(),
        append_p50: percentile(&times, 0.5),
        append_p95: percentile(&times, 0.95),
        read: read_time,
        list: list_time,
    })
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = arg(&args, "--records").map_or(Ok(300), |s| s.parse())?;
    let runs: usize = arg(&args, "--runs").map_or(Ok(20), |s| s.parse())?;
    let stores = arg(&args, "--stores").unwrap_or_else(|| "dir,s3,gs".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let repo = env!("CARGO_MANIFEST_DIR");
        let vars = drctl::config::read_env_file(
            &std::path::Path::new(repo).join("localstack/endpoints.env"),
        )?;
        let settings = drctl::cloud::CloudSettings::from_vars(&vars);
        let objects = drctl::cloud::connect(&settings).await?.objects;
        let mut rows = Vec::new();
        for store in stores.split(',') {
            let dir = tempfile::tempdir()?;
            let prefix = drctl::journal::new_run_id("bench");
            // `dir+key`, `s3+key`, `gs+key`: the same store, every record and
            // head signed with a run key and checked against it on reading.
            let (kind, keyed) = match store.strip_suffix("+key") {
                Some(k) => (k, true),
                None => (store, false),
            };
            let mut state = match kind {
                "dir" => State::local(dir.path().to_path_buf()),
                scheme @ ("s3" | "gs") => {
                    let url = format!("{scheme}://{BUCKET}/{prefix}");
                    support::ensure_state_bucket(
                        objects.as_ref(),
                        &url,
                        &std::path::Path::new(repo).join("localstack/endpoints.env"),
                    )
                    .await?;
                    let location = StateLocation::parse(&url)?;
                    let t = Instant::now();
                    let s = drctl::state::open(
                        &location,
                        objects.clone(),
                        "us-east-1",
                        LeaseTimes::default(),
                    )
                    .await?;
                    eprintln!("bench: {scheme}: open + probe {:.1} ms", ms(t.elapsed()));
                    s
                }
                other => return Err(format!("unknown store {other}").into()),
            };
            if keyed {
                let key = drctl::sign::SecretKey::generate();
                let keys = drctl::journal::RunKeys::new(Some(key.clone()), vec![key.public()]);
                state.journals = Arc::new(drctl::journal::Keyed::new(state.journals.clone(), keys));
            }
            eprintln!("bench: {store}: {records} appends, then {runs} runs listed");
            rows.push(measure(store, state, records, runs).await?);
        }
        println!(
            "| store | append p50 (ms) | append p95 (ms) | read + verify {records} records (ms) | list + read {runs} runs of 10 records (ms) |"
        );
        println!("|---|---:|---:|---:|---:|");
        for r in rows {
            println!(
                "| {} | {:.2} | {:.2} | {:.1} | {:.1} |",
                r.store,
                ms(r.append_p50),
                ms(r.append_p95),
                ms(r.read),
                ms(r.list)
            );
        }
        Ok::<_, BoxError>(())
    })
}
