//! The `drctl` binary end to end: plan validation exit codes and positions,
//! and `drctl status` against an isolated copy of the reference world.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::world;

fn drctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("drctl runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes the reference plans, renamed for the world `seed --suffix S` made:
/// every quoted id gets `-S`, the zone becomes `S.example.com.`.
pub fn suffixed_plans(suffix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["payments.toml", "ledger.toml", "tiers.toml"] {
        add_suffixed_plan(dir.path(), name, suffix);
    }
    dir
}

/// Writes the reference plan file `name` into `dir`, renamed for the world
/// seeded with `--suffix suffix`.
pub fn add_suffixed_plan(dir: &Path, name: &str, suffix: &str) {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut t = std::fs::read_to_string(plans.join(name)).expect("reference plan");
    for id in [
        "payments-db-use1",
        "payments-db-euw1",
        "payments-api-usw2",
        "payments-api-use1",
        "payments-api-euw1",
        "ledger-db-use1",
        "ledger-workers-usw2",
        "ledger-workers-use1",
        "checkout-db-usw2",
        "checkout-db-euw1",
        "checkout-web-use1",
        "checkout-web-usw2",
        "checkout-web-euw1",
        "drctl-evidence-use1",
        "drctl-evidence-euw1",
        "drctl-control-use1",
        "drctl-control-usw2",
        "drctl-control-euw1",
        "orders-global",
        "orders-usw2",
        "orders-use1",
        "orders-euw1",
        "catalog-db-use1",
        "archive-api-usw2",
        "archive-api-use1",
    ] {
        t = t.replace(&format!("\"{id}\""), &format!("\"{id}-{suffix}\""));
        t = t.replace(&format!("//{id}/"), &format!("//{id}-{suffix}/"));
    }
    // EKS node groups are named `cluster/nodegroup`.
    for tag in ["usw2", "use1", "euw1"] {
        for base in ["orders-eks", "orders-nodes", "catalog-eks", "catalog-nodes"] {
            let name = format!("{base}-{tag}");
            t = t.replace(&format!("\"{name}/"), &format!("\"{name}-{suffix}/"));
            t = t.replace(&format!("/{name}\""), &format!("/{name}-{suffix}\""));
        }
    }
    // ECS services are named `cluster/service`.
    for tag in ["usw2", "use1", "euw1"] {
        let cluster = format!("orders-ecs-{tag}");
        t = t.replace(&format!("\"{cluster}/"), &format!("\"{cluster}-{suffix}/"));
    }
    t = t.replace("/orders-workers\"", &format!("/orders-workers-{suffix}\""));
    // catalog's namespace, in every cluster.
    t = t.replace(
        "namespace = \"catalog\"",
        &format!("namespace = \"catalog-{suffix}\""),
    );
    for db in [
        "payments-db",
        "ledger-db",
        "checkout-db",
        "catalog-db",
        "archive-db",
        "archive-ledger",
    ] {
        t = t.replace(&format!("\"{db}\""), &format!("\"{db}-{suffix}\""));
    }
    t = t.replace(
        "gs://drctl-evidence/",
        &format!("gs://drctl-evidence-{suffix}/"),
    );
    t = t.replace(".example.com.\"", &format!(".{suffix}.example.com.\""));
    t = t.replace("\"example.com.\"", &format!("\"{suffix}.example.com.\""));
    std::fs::write(dir.join(name), t).expect("write plan");
}

#[test]
fn plan_validate_accepts_the_reference_plans() {
    let o = drctl(&["plan", "validate", "plans/"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("ok: payments (critical tier, RTO 15m, RPO 5m"),
        "{out}"
    );
    assert!(
        out.contains("ok: ledger (important tier, RTO 30m, RPO 15m"),
        "{out}"
    );
}

#[test]
fn plan_validate_reports_every_error_with_position_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string("plans/payments.toml")
        .unwrap()
        .replace("follows = \"payments-db\"", "follows = \"payments-dbx\"")
        .replace("tier = \"critical\"", "tier = \"critcal\"")
        .replace("schedule = \"0 3 * * MON\"", "schedule = \"0 3 * *\"");
    let path: PathBuf = dir.path().join("payments.toml");
    std::fs::write(&path, &broken).unwrap();
    let o = drctl(&["plan", "validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let file = path.display().to_string();
    assert!(
        err.contains(&format!("{file}:{}:8", line_of("tier = "))),
        "{err}"
    );
    assert!(err.contains("did you mean `critical`?"), "{err}");
    assert!(
        err.contains(&format!("{file}:{}:11", line_of("follows ="))),
        "{err}"
    );
    assert!(err.contains("did you mean `payments-db`?"), "{err}");
    assert!(
        err.contains(&format!("{file}:{}:12", line_of("schedule ="))),
        "{err}"
    );
    assert!(err.contains("3 errors in 1 file"), "{err}");
}

#[test]
fn plan_budget_forecasts_each_plan_and_names_the_binding_constraint() {
    let o = drctl(&["plan", "budget", "--to", "us-east-1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for plan in ["payments", "ledger", "checkout", "archive"] {
        assert!(out.contains(plan), "{out}");
    }
    // The slowest chain is archive's: a restore from backups, no replica.
    assert!(
        out.contains(
            "binding constraint: AWS's own time: rds:RestoreDBInstanceToPointInTime (median 25m 00s"
        ) && out.contains("on archive's chain"),
        "{out}"
    );
    assert!(out.contains("lower bound"), "{out}");
    assert!(out.contains("basis: estimated from the model"), "{out}");

    // Two hundred plans at once: the shared limits show, in sentences.
    let o = drctl(&[
        "plan",
        "budget",
        "--to",
        "us-east-1",
        "--plan",
        "payments",
        "--plans-at-once",
        "200",
        "--output",
        "json",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(f["plans_at_once"], 200);
    assert_eq!(f["plans"].as_array().map(Vec::len), Some(1));
    let p50 = f["plans"][0]["rto"]["p50_seconds"].as_f64().unwrap();
    let p90 = f["plans"][0]["rto"]["p90_seconds"].as_f64().unwrap();
    assert!(p50 > 60.0 && p90 > p50, "{f}");
    let terms: Vec<&str> = f["terms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["detail"].as_str())
        .collect();
    assert!(
        terms
            .iter()
            .any(|t| t.contains("rds in us-east-1") && t.contains("burst of 300")),
        "{terms:?}"
    );
    assert!(
        f["lower_bound_seconds"].as_f64().unwrap() <= f["run"]["p50_seconds"].as_f64().unwrap()
    );

    // The engine's own bound, when set, is named.
    let o = drctl(&[
        "plan",
        "budget",
        "--to",
        "us-east-1",
        "--plan",
        "payments",
        "--plans-at-once",
        "50",
        "--parallelism",
        "8",
    ]);
    let (out, _) = text(&o);
    assert!(out.contains("binding constraint: --parallelism 8"), "{out}");

    // A region the plan does not have: invalid input, exit 2.
    let o = drctl(&["plan", "budget", "--to", "ap-south-1", "--plan", "payments"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("ap-south-1"), "{err}");
}

/// Data residency: a plan whose `allowed_regions` leave out a site it
/// places is refused with the site's position, by `plan validate` and by
/// a failover to that site alike, before any call (no endpoint is set:
/// a call would fail otherwise than exit 2 naming the plan's line).
#[test]
fn a_failover_to_a_region_outside_allowed_regions_is_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let text_of = std::fs::read_to_string("plans/payments.toml").unwrap();
    let regions = "regions = [\"us-west-2\", \"us-east-1\", \"eu-west-1\"]";
    assert!(text_of.contains(regions));
    let residency = text_of.replacen(
        regions,
        &format!("{regions}\nallowed_regions = [\"us-west-2\", \"eu-west-1\"]"),
        1,
    );
    std::fs::write(dir.path().join("payments.toml"), &residency).unwrap();
    std::fs::copy("plans/tiers.toml", dir.path().join("tiers.toml")).unwrap();
    let line = residency.lines().position(|l| l == regions).unwrap() + 1;
    let at = format!("payments.toml:{line}:");
    let plans = dir.path().to_str().unwrap();
    for args in [
        vec!["--plans", plans, "plan", "validate"],
        vec![
            "--plans",
            plans,
            "failover",
            "--plan",
            "payments",
            "--to",
            "us-east-1",
            "--approve",
            "residency test",
        ],
    ] {
        let o = drctl(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&at) && err.contains("us-east-1, outside its allowed_regions"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn plan_show_and_graph_describe_the_failover() {
    let o = drctl(&["plan", "show", "payments"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("tier:   critical (RTO 15m, RPO 5m"), "{out}");
    assert!(out.contains("failover to us-east-1 would:"), "{out}");
    assert!(
        out.contains("promote read replica payments-db-use1 in us-east-1"),
        "{out}"
    );
    assert!(out.contains("cannot be undone"), "{out}");

    let o = drctl(&[
        "plan",
        "graph",
        "payments",
        "--to",
        "us-east-1",
        "--format",
        "mermaid",
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.starts_with("flowchart LR"), "{out}");
    let o = drctl(&["plan", "graph", "payments", "--to", "eu-west-9"]);
    assert_eq!(o.status.code(), Some(2));
    let o = drctl(&["plan", "show", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn status_reports_seeded_lag_and_capacities() {
    crate::needs_emulators!();
    world::settings();
    let suffix = world::unique("st");
    world::seed(&suffix);
    let plans = suffixed_plans(&suffix);
    let endpoints = world::endpoints_file();
    let o = drctl(&[
        "--plans",
        plans.path().to_str().unwrap(),
        "--endpoints",
        endpoints.to_str().unwrap(),
        "status",
        "--output",
        "json",
    ]);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "ledger is not ready, so exit 1\n{out}{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let plan = |name: &str| {
        report["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan"] == name)
            .unwrap()
            .clone()
    };
    let payments = plan("payments");
    assert_eq!(payments["ready"], true, "{payments:#}");
    assert_eq!(payments["active_region"], "us-west-2");
    let standby = &payments["regions"][1];
    assert_eq!(standby["region"], "us-east-1");
    assert_eq!(standby["databases"][0]["role"], "replica");
    assert_eq!(standby["databases"][0]["lag_seconds"], 3.0);
    assert_eq!(
        standby["compute"][0]["capacity"],
        serde_json::json!({"min": 0, "desired": 0, "max": 8})
    );
    let home = &payments["regions"][0];
    assert_eq!(home["databases"][0]["role"], "primary");
    assert_eq!(
        home["compute"][0]["capacity"],
        serde_json::json!({"min": 2, "desired": 4, "max": 8})
    );
    assert_eq!(payments["dns"][0]["points_to"], "us-west-2");
    assert_eq!(payments["dns"][1]["points_to"], "us-west-2");

    let ledger = plan("ledger");
    assert_eq!(ledger["ready"], false);
    let standby = &ledger["regions"][1];
    assert_eq!(standby["databases"][0]["lag_seconds"], 1200.0);
    assert_eq!(standby["databases"][0]["within_rpo"], false);
    assert!(
        standby["problems"][0]
            .as_str()
            .unwrap()
            .contains("above the important tier's RPO of 15m"),
        "{standby:#}"
    );
    assert_eq!(
        ledger["regions"][0]["compute"][0]["capacity"],
        serde_json::json!({"min": 1, "desired": 2, "max": 4})
    );
    assert_eq!(ledger["dns"][0]["points_to"], "us-west-2");

    // The human view says the same.
    let o = drctl(&[
        "--plans",
        plans.path().to_str().unwrap(),
        "--endpoints",
        endpoints.to_str().unwrap(),
        "status",
        "--plan",
        "payments",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("lag 3s (max of"), "{out}");
    assert!(out.contains("READY"), "{out}");
}

/// An unknown run id is invalid input (exit 2) for every command that
/// takes one; `runs resume NOPE` used to exit 1.
#[test]
fn an_unknown_run_id_exits_2_for_every_command() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path().to_str().unwrap();
    // No emulator is needed: the run id is refused before any call.
    let endpoints = world::offline_endpoints(state.path());
    let e = endpoints.to_str().unwrap();
    for cmd in [
        vec!["runs", "show", "NOPE"],
        vec!["runs", "resume", "NOPE"],
        vec!["runs", "approve", "NOPE", "--reason", "x"],
        vec!["audit", "verify", "NOPE"],
    ] {
        let mut args = vec!["--state-dir", s, "--endpoints", e];
        args.extend(&cmd);
        let o = drctl(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("no journal for run `NOPE`"), "{cmd:?}: {err}");
    }
}

/// Runs drctl with a stdout whose reader has gone (`drctl ... | head -1`
/// once `head` has its line).
fn drctl_into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("drctl runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("drctl ends")
}

/// Regression: `drctl plan graph ... | head -1` panicked with "failed
/// printing to stdout: Broken pipe" and exited 101.
#[test]
fn a_closed_stdout_pipe_ends_quietly_with_success() {
    let args: Vec<&str> = "plan graph payments --to us-east-1 --format dot"
        .split(' ')
        .collect();
    let o = drctl_into_closed_pipe(&args);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

/// Regression (issue 16): `drctl completions bash | head -1` panicked (exit
/// 101) and `drctl man | head -1` exited 1; every command ends with 0 and
/// says nothing when its reader closes stdout.
#[test]
fn completions_and_man_panicked_or_failed_on_a_closed_pipe() {
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec!["plan", "show", "payments"],
        vec!["plan", "validate"],
        vec!["plan", "graph", "payments", "--to", "us-east-1"],
    ] {
        let o = drctl_into_closed_pipe(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let o = drctl(&["completions", "bash"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for sub in ["failover", "reprotect", "status", "runs"] {
        assert!(out.contains(sub), "bash completions name {sub}");
    }
    let o = drctl(&["man"]);
    let (out, _) = text(&o);
    assert!(
        out.contains(".TH drctl 1") && out.contains("failover"),
        "{out}"
    );
    let o = drctl(&["failover", "--help"]);
    let (out, _) = text(&o);
    let global = out
        .find("Global options:")
        .expect("a heading for the global options");
    assert!(
        out[global..].contains("--state-dir") && !out[..global].contains("--state-dir"),
        "{out}"
    );
}

/// The start of a run `run` of payments to us-east-1, of `kind`, by
/// `operator`, as the engine journals one.
fn run_started(
    run: &str,
    kind: drctl::journal::RunKind,
    operator: Option<&str>,
) -> drctl::journal::Event {
    drctl::journal::Event::RunStarted {
        run_id: run.to_string(),
        kind,
        target: "us-east-1".into(),
        plans: vec![drctl::journal::PlanRef {
            name: "payments".into(),
            digest: "test".into(),
        }],
        operator: operator.map(String::from),
        host: "test".into(),
        pid: 1,
        flags: serde_json::json!({}),
        declared_at: None,
        nonce: None,
        steps: vec![],
    }
}

/// A drill of payments to us-east-1 that ended `outcome`, journaled (with
/// no key) in the local state at `dir` as a drill run would be: its run id.
async fn drill_journal(dir: &Path, outcome: drctl::journal::Outcome) -> String {
    use drctl::journal::{Event, Journal, RunKind};
    let store = std::sync::Arc::new(drctl::state::FileStore::new(dir));
    let run = drctl::journal::new_run_id("payments");
    let mut j = Journal::create(store, &run).await.unwrap();
    j.append(run_started(&run, RunKind::Drill, None))
        .await
        .unwrap();
    j.append(Event::RunFinished {
        outcome,
        summary: serde_json::json!({}),
    })
    .await
    .unwrap();
    run
}

/// `schedule list` reads drill runs from the journals: a plan never drilled,
/// or whose last drill failed, is overdue, and the command exits 1 (it can
/// drive an alert); `status` shows the same beside readiness.
#[tokio::test(flavor = "multi_thread")]
async fn schedule_list_flags_plans_without_a_passing_drill_and_exits_1() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path().to_str().unwrap().to_string();
    // A failed drill of payments, journaled as a drill run would be.
    let run = drill_journal(state.path(), drctl::journal::Outcome::Failed).await;

    let o = drctl(&["--state-dir", &s, "schedule", "list", "--output", "json"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["overdue"], true);
    let payments = v["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == "payments")
        .unwrap();
    assert_eq!(payments["overdue"], true);
    assert_eq!(payments["last"]["run_id"], run.as_str());
    assert_eq!(payments["last"]["verdict"]["verdict"], "FAIL");
    assert!(payments["last_passing"].is_null());
    assert!(payments["next_slot"].is_string(), "{payments}");
    // Issue 41: and whether it is verified (it never passed a drill).
    assert_eq!(payments["verified"]["verified"], false, "{payments}");
    assert!(payments["verified"]["reason"].is_string(), "{payments}");
    let o = drctl(&["--state-dir", &s, "schedule", "list", "--plan", "payments"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("OVERDUE") && out.contains("FAIL (the drill ended failed)"),
        "{out}"
    );
    assert!(out.contains("NOT VERIFIED"), "{out}");
}

/// Issue 39 (a row of docs/security.md held by no test of its own): a
/// drill journal forged by a writer of the state, unsigned, is read as the
/// plan's last drill where nothing can be authenticated. With run keys
/// listed, the readers of the drill history (`schedule list`, `status`, a
/// failover's preview: one read, `cli::history::cadence`) leave it out and
/// name it: it can make no plan's drill on time, nor any plan verified.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_drill_journal_is_no_drill_when_keys_are_listed() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path().to_str().unwrap().to_string();
    // Written without any key, as a writer of the state writes it.
    let run = drill_journal(state.path(), drctl::journal::Outcome::Succeeded).await;
    let list = |keys: Option<String>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        c.args(["--color", "never", "--state-dir", &s])
            .args(["schedule", "list", "--plan", "payments", "--output", "json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DRCTL_RUN_KEY")
            .env_remove("DRCTL_RUN_PUBLIC");
        if let Some(k) = keys {
            c.env("DRCTL_RUN_PUBLIC", k);
        }
        c.output().expect("drctl runs")
    };
    let last = |o: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["plans"][0]["last"]["run_id"].clone()
    };
    // Without keys nothing can be authenticated: it is read, as it reads.
    let o = list(None);
    assert_eq!(last(&o), run.as_str(), "{}", text(&o).1);
    // Issue 74, attack 6: and it is said to be unauthenticated (what a
    // passing one proves is said so too: `proved.authenticated`).
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["plans"][0]["last"]["authenticated"], false, "{v:#}");
    // With keys listed: left out, and named.
    let key = drctl::sign::SecretKey::generate();
    let o = list(Some(key.public().to_text()));
    let (out, err) = text(&o);
    assert!(last(&o).is_null(), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["plans"][0]["last_passing"].is_null(), "{out}");
    assert_eq!(v["plans"][0]["verified"]["verified"], false, "{out}");
    assert!(err.contains("left out") && err.contains(&run), "{err}");
}

// ---- Hostile input and a clear first error (issue 28) --------------------

/// Runs drctl in `dir` with no `DRCTL_*` setting from this environment.
fn drctl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never"])
        .args(args)
        .current_dir(dir)
        .env_remove("DRCTL_PLANS")
        .env_remove("DRCTL_STATE")
        .env_remove("DRCTL_STATE_DIR")
        .env_remove("DRCTL_ENDPOINTS")
        .output()
        .expect("drctl runs")
}

/// The reference plans in `dir/plans`, ledger's with `[watch]` `extra`.
fn plans_with_ledger_watch(dir: &Path, extra: &str) -> (PathBuf, String) {
    let plans = dir.join("plans");
    std::fs::create_dir(&plans).unwrap();
    for name in ["payments.toml", "checkout.toml", "tiers.toml"] {
        std::fs::copy(Path::new("plans").join(name), plans.join(name)).unwrap();
    }
    let ledger = std::fs::read_to_string("plans/ledger.toml").unwrap() + "\n[watch]\n" + extra;
    std::fs::write(plans.join("ledger.toml"), &ledger).unwrap();
    (plans, ledger)
}

/// `[watch] interval = "50000000000000d"` panicked `plan validate`, and
/// `failures = 4294967295` too: exit 2, each at its file:line:col.
#[test]
fn regression_watch_interval_overflow_panicked_plan_validate() {
    let dir = tempfile::tempdir().unwrap();
    let (plans, ledger) = plans_with_ledger_watch(
        dir.path(),
        "interval = \"50000000000000d\"\nfailures = 4294967295\n",
    );
    let o = drctl_in(dir.path(), &["plan", "validate"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    let line_of = |needle: &str| ledger.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let file = plans.join("ledger.toml");
    let file = file.strip_prefix(dir.path()).unwrap().display().to_string();
    assert!(
        err.contains(&format!("{file}:{}:12", line_of("interval ="))),
        "{err}"
    );
    assert!(err.contains("longer than 3650d (ten years)"), "{err}");
    assert!(
        err.contains(&format!("{file}:{}:12", line_of("failures ="))),
        "{err}"
    );
    assert!(err.contains("more than 1000 failed observations"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(err.contains("2 errors in 4 files"), "{err}");
}

/// Regression: a plan's `[[notify]]` could read any of the host's
/// variables or files and send it to a URL of its choosing. `plan
/// validate` now refuses each at its file:line:col (exit 2): a variable
/// not named for the plan (`DRCTL_NOTIFY_LEDGER_*`), a file outside the operators' secrets
/// directory, an http URL, a host the operators do not allow.
#[test]
fn regression_a_plans_sink_could_read_host_secrets_plan_validate_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("plain"), "http://hooks.example.com/T0KEN").unwrap();
    std::fs::write(
        secrets.join("elsewhere"),
        "https://collector.evil.test/T0KEN",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("drctl.toml"),
        "[plan_notify]\nsecrets_dir = \"secrets\"\nallowed_hosts = [\"hooks.example.com\"]\n",
    )
    .unwrap();
    let sinks = "\n[[notify]]\nname = \"steal\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_LEDGER__HOOK\"\nsecret_env = \"AWS_SECRET_ACCESS_KEY\"\n\n[[notify]]\nname = \"file\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_LEDGER__HOOK\"\nsecret_file = \"../drctl.toml\"\n\n[[notify]]\nname = \"plain\"\nkind = \"slack\"\nurl_file = \"plain\"\n\n[[notify]]\nname = \"far\"\nkind = \"slack\"\nurl_file = \"elsewhere\"\n\n[[notify]]\nname = \"other\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_LEDGER__HOOK\"\nsecret_env = \"DRCTL_NOTIFY_PAYMENTS__SECRET\"\n";
    let (plans, ledger) = plans_with_ledger_watch(dir.path(), "mode = \"observe\"\n");
    let ledger = ledger + sinks;
    std::fs::write(plans.join("ledger.toml"), &ledger).unwrap();
    let o = drctl_in(dir.path(), &["plan", "validate"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    let file = plans.join("ledger.toml");
    let file = file.strip_prefix(dir.path()).unwrap().display().to_string();
    let line_of = |needle: &str| ledger.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    for (needle, col, says) in [
        ("secret_env = \"AWS", 14, "AWS_SECRET_ACCESS_KEY"),
        ("secret_file = \"../", 15, "secrets directory"),
        ("url_file = \"plain", 12, "https"),
        ("url_file = \"elsewhere", 12, "collector.evil.test"),
        // Another plan's variable holds that plan's secret (issue 39).
        (
            "secret_env = \"DRCTL_NOTIFY_PAYMENTS",
            14,
            "DRCTL_NOTIFY_LEDGER__*",
        ),
    ] {
        let at = format!("{file}:{}:{col}", line_of(needle));
        assert!(err.contains(&at), "{needle}: {at}\n{err}");
        assert!(err.contains(says), "{says}\n{err}");
    }
    assert!(err.contains("5 errors"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("T0KEN"), "a sink's URL is a secret: {err}");
}

/// Regression: what a plan says reached the terminal as written: a tier
/// named with an escape sequence cleared the screen or set the window's
/// title when `plan validate` quoted it. Every escape sequence and control
/// character is gone; with `--color always`, the only sequences left are
/// drctl's own colours.
#[test]
fn regression_plan_text_drove_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (plans, _) = plans_with_ledger_watch(dir.path(), "mode = \"observe\"\n");
    let payments = std::fs::read_to_string(plans.join("payments.toml")).unwrap();
    let hostile = payments.replacen(
        "tier = \"critical\"",
        "tier = \"crit\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m\"",
        1,
    );
    assert_ne!(hostile, payments);
    std::fs::write(plans.join("payments.toml"), hostile).unwrap();
    for color in ["never", "always"] {
        let o = Command::new(env!("CARGO_BIN_EXE_drctl"))
            .args(["--color", color, "plan", "validate"])
            .current_dir(dir.path())
            .env_remove("DRCTL_PLANS")
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out}{err}");
        assert!(err.contains("unknown tier `crit"), "{err}");
        let all = out + &err;
        assert!(!all.contains('\u{7}') && !all.contains('\u{9b}'), "{all:?}");
        for (at, _) in all.match_indices('\u{1b}') {
            let rest = &all[at + 1..];
            let sgr = rest.strip_prefix('[').is_some_and(|r| {
                let params = r.find(|c: char| !c.is_ascii_digit() && c != ';');
                params.is_some_and(|i| r[i..].starts_with('m'))
            });
            assert!(
                color == "always" && sgr,
                "{color}: a sequence not ours: {all:?}"
            );
        }
    }
}

/// Every duration flag refuses a duration beyond ten years: exit 2, the
/// flag named, never a panic further on.
#[test]
fn regression_huge_duration_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    plans_with_ledger_watch(dir.path(), "");
    let endpoints = world::offline_endpoints(dir.path());
    let e = endpoints.to_str().unwrap();
    let huge = "50000000000000d";
    for cmd in [
        vec![
            "drill",
            "--plan",
            "payments",
            "--to",
            "us-east-1",
            "--max-duration",
            huge,
        ],
        vec![
            "failover",
            "--plan",
            "payments",
            "--to",
            "us-east-1",
            "--step-timeout",
            huge,
        ],
        vec![
            "failover",
            "--plan",
            "payments",
            "--to",
            "us-east-1",
            "--accept-data-loss",
            huge,
        ],
        vec!["status", "--lag-window", huge],
        vec!["status", "--read-timeout", "18446744073709551615s"],
        vec!["report", "--since", "3651d"],
        vec![
            "watch", "veto", "--plan", "payments", "--reason", "x", "--for", huge,
        ],
        vec!["schedule", "run", "--catch-up", "87601h"],
    ] {
        let mut args = vec!["--endpoints", e];
        args.extend(&cmd);
        let o = drctl_in(dir.path(), &args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {out}{err}");
        assert!(!err.contains("panicked"), "{cmd:?}: {err}");
        assert!(err.contains("longer than 3650d"), "{cmd:?}: {err}");
    }
}

/// One invalid plan made `status --plan X` (and failover, drill, watch)
/// exit 2 for every other plan: the named plan goes on, with a warning
/// that names the invalid file and its first error. The invalid plan
/// itself, and `plan validate`, still exit 2.
#[test]
fn regression_an_unrelated_invalid_plan_blocked_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let (plans, ledger) = plans_with_ledger_watch(dir.path(), "interval = \"50000000000000d\"\n");
    let endpoints = world::offline_endpoints(dir.path());
    let e = endpoints.to_str().unwrap();
    let line = ledger
        .lines()
        .position(|l| l.starts_with("interval ="))
        .unwrap()
        + 1;
    let file = plans.join("ledger.toml");
    let place = format!(
        "{}:{line}:12",
        file.strip_prefix(dir.path()).unwrap().display()
    );

    let o = drctl_in(
        dir.path(),
        &[
            "--endpoints",
            e,
            "status",
            "--plan",
            "payments",
            "--read-timeout",
            "1s",
            "--output",
            "json",
        ],
    );
    let (out, err) = text(&o);
    assert_ne!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("warning: 1 invalid plan file skipped"),
        "{err}"
    );
    assert!(err.contains(&place), "{err}");
    assert!(err.contains("50000000000000d"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a status report");
    let names: Vec<&str> = report["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["plan"].as_str())
        .collect();
    assert_eq!(names, ["payments"], "{report:#}");

    // The invalid plan itself, every plan, and `plan validate`: exit 2,
    // with the diagnostics.
    for cmd in [
        vec!["status", "--plan", "ledger", "--read-timeout", "1s"],
        vec!["status", "--read-timeout", "1s"],
        vec!["plan", "validate"],
        vec![
            "failover",
            "--plan",
            "ledger",
            "--to",
            "us-east-1",
            "--dry-run",
        ],
    ] {
        let mut args = vec!["--endpoints", e];
        args.extend(&cmd);
        let o = drctl_in(dir.path(), &args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {out}{err}");
        assert!(err.contains(&place), "{cmd:?}: {err}");
        assert!(!err.contains("skipped"), "{cmd:?}: {err}");
    }
}

/// Outside a directory with `plans/`, every command said `error: unknown
/// file type --> plans:1:1`: it names the missing directory and the ways
/// to choose one.
#[test]
fn regression_a_missing_plans_directory_was_an_unknown_file_type() {
    let dir = tempfile::tempdir().unwrap();
    let endpoints = world::offline_endpoints(dir.path());
    let e = endpoints.to_str().unwrap();
    for cmd in [
        vec!["status"],
        vec!["plan", "validate"],
        vec!["plan", "show", "payments"],
        vec![
            "failover",
            "--plan",
            "payments",
            "--to",
            "us-east-1",
            "--dry-run",
        ],
        vec!["drill", "--plan", "payments", "--to", "us-east-1"],
        vec!["schedule", "list"],
        vec!["report"],
    ] {
        let mut args = vec!["--endpoints", e];
        args.extend(&cmd);
        let o = drctl_in(dir.path(), &args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {out}{err}");
        assert!(!err.contains("unknown file type"), "{cmd:?}: {err}");
        assert!(
            err.contains(&format!(
                "the plans directory {} was not found",
                dir.path().join("plans").display()
            )),
            "{cmd:?}: {err}"
        );
        for way in ["--plans DIR", "drctl.toml", "DRCTL_PLANS"] {
            assert!(err.contains(way), "{cmd:?}: {err}");
        }
    }
    // Named by the flag, the same.
    let o = drctl_in(dir.path(), &["--plans", "elsewhere", "status"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("elsewhere was not found"), "{err}");
}

/// A webhook that answers one request with 204, in a thread; its URL.
fn one_answer_webhook() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The headers, then the body their Content-Length announces.
        loop {
            let n = conn.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len || n == 0 {
                    break;
                }
            } else if n == 0 {
                break;
            }
        }
        conn.write_all(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        String::from_utf8_lossy(&got).into_owned()
    });
    (url, handle)
}

/// `notify test` loaded the plans for their sinks, so it failed without a
/// plans directory even when every sink is in drctl.toml.
#[test]
fn regression_notify_test_needed_a_plans_directory() {
    let dir = tempfile::tempdir().unwrap();
    let endpoints = world::offline_endpoints(dir.path());
    let (url, answered) = one_answer_webhook();
    std::fs::write(
        dir.path().join("drctl.toml"),
        format!("[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let o = drctl_in(
        dir.path(),
        &["--endpoints", endpoints.to_str().unwrap(), "notify", "test"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("ops") && out.contains("delivered"), "{out}");
    let request = answered.join().unwrap();
    assert!(request.contains("dev.drctl.notify.test"), "{request}");
}

/// `lock break --plan ../../x` on local state reached a file outside the
/// state directory (`<state>/locks/../../x.lock`); `lock status` read one.
/// A name that is no plan's is refused (exit 2) before any file is touched.
#[test]
fn regression_lock_break_reached_outside_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a").join("state");
    std::fs::create_dir_all(state.join("locks")).unwrap();
    let victim = dir.path().join("a").join("x.lock");
    std::fs::write(&victim, "not a lock of drctl's").unwrap();
    let endpoints = world::offline_endpoints(dir.path());
    let base = [
        "--endpoints",
        endpoints.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    for cmd in [
        vec!["lock", "break", "--plan", "../x", "--reason", "test"],
        vec!["lock", "break", "--plan", "../../x", "--reason", "test"],
        vec!["lock", "status", "--plan", "../x"],
        vec!["lock", "status", "--plan", "Payments"],
    ] {
        let mut args = base.to_vec();
        args.extend(&cmd);
        let o = drctl_in(dir.path(), &args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {out}{err}");
        assert!(err.contains("is not a plan name"), "{cmd:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not a lock of drctl's"
    );
}

/// Issue 39: a Markdown report printed to standard output (piped, as a CI
/// job or a script reads it) is escaped as one written with `--out`: text
/// a journal carries (here an operator's name) neither mentions nor links
/// when pasted into GitHub, and drives no terminal.
#[tokio::test(flavor = "multi_thread")]
async fn a_markdown_report_printed_or_piped_neither_mentions_links_nor_drives_the_terminal() {
    use drctl::journal::{Event, Journal, Outcome, RunKind};
    let state = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(drctl::state::FileStore::new(state.path()));
    let run = drctl::journal::new_run_id("payments");
    let mut j = Journal::create(store, &run).await.unwrap();
    let operator = "@oncall-team see https://evil.test/x \u{1b}]0;owned\u{7}";
    j.append(run_started(&run, RunKind::Drill, Some(operator)))
        .await
        .unwrap();
    j.append(Event::RunFinished {
        outcome: Outcome::Succeeded,
        summary: serde_json::json!({}),
    })
    .await
    .unwrap();
    let s = state.path().to_str().unwrap().to_string();
    let o = drctl(&[
        "--state-dir",
        &s,
        "report",
        "--since",
        "30d",
        "--format",
        "md",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("oncall-team"), "the operator is shown: {out}");
    for (at, _) in out.match_indices('@') {
        assert!(
            out[at + 1..].starts_with("&#8203;"),
            "a bare @ (a mention): {}",
            &out[at.saturating_sub(40)..(at + 20).min(out.len())]
        );
    }
    assert!(!out.contains("https://evil"), "a bare link: {out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
}

/// Issue 39: with `run_public` listed and no run key held, every command
/// that writes a journal, a late fact or a delivery fact is refused before
/// it takes a lock or calls a cloud: exit 2, the run key named in the
/// hint, and the state left byte for byte as it was (no journal nobody
/// can verify is ever written). The cloud endpoints point at a closed
/// port: a command that called one would fail otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn with_run_public_listed_every_writer_without_the_run_key_exits_2_and_writes_nothing() {
    use drctl::journal::{
        ApprovalDetail, Decision, Event, GateName, Journal, Keyed, Outcome, RunKeys, RunKind,
    };
    let state = tempfile::tempdir().unwrap();
    // A failover the run key signed, which a resume or an approval would
    // add to: only the key's holder may.
    let key = drctl::sign::SecretKey::generate();
    let files = std::sync::Arc::new(drctl::state::FileStore::new(state.path()));
    let keys = RunKeys::new(Some(key.clone()), vec![key.public()]);
    let store = std::sync::Arc::new(Keyed::new(files, keys));
    let run = drctl::journal::new_run_id("payments");
    let mut j = Journal::create(store, &run).await.unwrap();
    j.append(run_started(&run, RunKind::Failover, None))
        .await
        .unwrap();
    // An emergency run, approved later (`runs approve` is for these).
    j.append(Event::Gate {
        plan: "payments".into(),
        gate: GateName::Approval,
        decision: Decision::Override,
        detail: serde_json::to_value(ApprovalDetail {
            emergency: Some(true),
            approve_by: Some(chrono::Utc::now() + chrono::Duration::hours(4)),
            ..Default::default()
        })
        .unwrap(),
    })
    .await
    .unwrap();
    j.append(Event::RunFinished {
        outcome: Outcome::Failed,
        summary: serde_json::json!({}),
    })
    .await
    .unwrap();
    drop(j);
    let snapshot = || -> BTreeMap<PathBuf, Vec<u8>> {
        walk(state.path())
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    };
    let before = snapshot();
    let public = key.public().to_text();
    let s = state.path().to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["failover", "--to", "us-east-1", "--plan", "payments"],
        &[
            "failover",
            "--to",
            "us-east-1",
            "--plan",
            "payments",
            "--planned",
        ],
        &["drill", "--plan", "payments", "--to", "us-east-1"],
        &["runs", "resume", &run],
        &["runs", "approve", &run, "--reason", "outage"],
        &["notify", "flush"],
    ];
    for args in commands {
        let o = Command::new(env!("CARGO_BIN_EXE_drctl"))
            .args(["--color", "never", "--state-dir", s])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("DRCTL_RUN_PUBLIC", &public)
            .env_remove("DRCTL_RUN_KEY")
            .env_remove("DRCTL_RUN_KEY_FILE")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("DRCTL_GCP_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .expect("drctl runs");
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(
            err.contains("DRCTL_RUN_KEY"),
            "{args:?}: the hint names the key: {err}"
        );
        // Regression: a drill read its inventory from the cloud, and `runs
        // approve` asked STS who it was, before either found it held no
        // key (and with the cloud unreachable, approve exited 1).
        assert!(
            !err.contains("cloud error") && !err.contains("operation="),
            "{args:?} called a cloud before refusing: {err}"
        );
        assert_eq!(snapshot(), before, "{args:?} wrote to the state");
    }
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Issue 74, attack 4: a switchover drill's approval covered its
/// failover alone, and the three runs that bring the plan home ran
/// unapproved. A switchover drill refuses `--approve-preview` before it
/// reads anything (exit 2), saying why and what to do instead.
#[test]
fn a_switchover_drill_refuses_an_approved_preview() {
    let hash = "p2-20261129T101500Z-0123456789abcdef0123456789abcdef";
    let o = drctl(&[
        "drill",
        "--plan",
        "orders",
        "--to",
        "us-east-1",
        "--depth",
        "switchover",
        "--approve-preview",
        hash,
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("its way back"), "{err}");
    assert!(err.contains("--dry-run"), "{err}");
}

/// Issue 74, attack 9: `[plan_notify] secrets_dir` may not hold a key file
/// drctl.toml names, but `watch --key-file` was not counted: an observer's
/// key there was any plan's sink's to read and send away. It is refused
/// (exit 2), naming the file, before the key is read.
#[test]
fn regression_watch_key_file_inside_the_secrets_dir_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let plans = dir.path().join("plans");
    std::fs::create_dir(&plans).unwrap();
    for f in ["payments.toml", "tiers.toml"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(f);
        std::fs::copy(from, plans.join(f)).unwrap();
    }
    let keygen = drctl_in(dir.path(), &["watch", "keygen", "--out", "secrets/obs.key"]);
    assert!(keygen.status.success(), "{:?}", text(&keygen));
    std::fs::write(
        dir.path().join("drctl.toml"),
        "[plan_notify]\nsecrets_dir = \"secrets\"\n",
    )
    .unwrap();
    let o = drctl_in(
        dir.path(),
        &["watch", "--once", "--key-file", "secrets/obs.key"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("secrets_dir") && err.contains("--key-file"),
        "{err}"
    );
}
