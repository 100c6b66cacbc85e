//! `drctl drill` end to end against the emulators: a drill passes, is
//! measured and leaves production as it was (read back with the raw SDKs);
//! a failing check fails it and it still cleans up; a crash at each point
//! of a drill (in process, and a kill -9) is cleaned up by a resume; a
//! sweep removes what a drill left after its journal was lost (but lowers
//! a raised group only on its drill's journal); a drill never fights a
//! failover for the capacity it raised.
//!
//! On moto, a promoted replica stays listed among its source's replicas,
//! also after it is deleted (real RDS drops it at promotion), so the home
//! primary's replica *list* is compared with that emulator artefact taken
//! out; every role and source is compared as read.

use crate::world::{Asg, AsgCalls};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use drctl::steps::drill_names::RUN_TAG;
use serde_json::Value;

use crate::fixture::{Fixture, Proxied, Snapshot};
use crate::proxy::{Fault, Gate, Match};
use crate::world::{self, STANDBY};

/// Production as a drill must leave it: the snapshot without moto's stale
/// replica lists (see the module docs), with drill instances filtered out.
fn production(mut s: Snapshot) -> Snapshot {
    for (k, v) in s.databases.iter_mut() {
        if k.ends_with("lists replicas") {
            let kept: Vec<&str> = v
                .trim_matches(|c| c == '[' || c == ']')
                .split(", ")
                .filter(|r| !r.contains("drill-"))
                .collect();
            *v = format!("[{}]", kept.join(", "));
        }
    }
    s
}

/// Whether `i` is a drill's temporary instance in the fixture's world: it
/// carries a drill tag and its id or its source names the fixture (a long id
/// ends with a digest instead of the whole replica id).
fn temp_of(f: &Fixture, i: &drctl::cloud::DbInstance) -> bool {
    i.id.starts_with("drill-")
        && i.tags.contains_key(RUN_TAG)
        && (i.id.contains(&f.suffix)
            || matches!(&i.role, drctl::cloud::DbRole::Replica(src) if src.contains(&f.suffix)))
}

/// Every drill resource of the fixture's world still there: instances
/// tagged by a drill in the standby, groups carrying a drill tag, records
/// named `drill-*` in the zone.
async fn leftovers(f: &Fixture) -> Vec<String> {
    let clouds = world::clouds().await;
    let mut left = Vec::new();
    for i in clouds
        .database
        .list_instances(STANDBY)
        .await
        .expect("list instances")
    {
        if temp_of(f, &i) {
            left.push(format!("database {}", i.id));
        }
    }
    for g in ["payments-api-use1", "payments-api-usw2"] {
        let region = if g.ends_with("use1") {
            STANDBY
        } else {
            world::HOME
        };
        let group = clouds
            .asg()
            .describe_group(region, &f.id(g))
            .await
            .expect("describe group")
            .expect("group exists");
        if group.tags.keys().any(|k| k.starts_with("drctl:drill")) {
            left.push(format!("group {} tags {:?}", group.name, group.tags));
        }
    }
    let zone = clouds
        .dns
        .find_zone(&f.zone)
        .await
        .expect("find zone")
        .expect("zone");
    for r in clouds.dns.list_records(&zone, "").await.expect("list") {
        if r.name.starts_with("drill-") {
            left.push(format!("record {} {}", r.name, r.rtype));
        }
    }
    left
}

fn drill_of(ran: &crate::fixture::Ran) -> Value {
    let j = ran.json();
    assert!(j["drill"].is_object(), "a drill report: {}", ran.all());
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_passes_is_measured_and_leaves_production_unchanged() {
    crate::needs_emulators!();
    let f = Fixture::new("drpass").await;
    let before = production(f.snapshot().await);
    let ran = f
        .drctl(&[
            "drill", "--plan", "payments", "--to", STANDBY, "--output", "json",
        ])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let j = drill_of(&ran);
    assert_eq!(j["kind"], "drill");
    assert_eq!(j["outcome"], "succeeded", "{}", ran.all());
    assert_eq!(
        j["drill"]["verdicts"][0]["verdict"],
        "PASS",
        "{}",
        ran.all()
    );
    let m = &j["measures"][0];
    assert!(m["rto"]["seconds"].as_f64().is_some_and(|s| s > 0.0), "{m}");
    assert_eq!(m["rto"]["met"], true, "{m}");
    // The lag publisher's value for an untagged replica (1 s by default).
    assert!(m["rpo"]["seconds"].as_f64().is_some(), "{m}");
    assert!(
        m["rpo"]["basis"]
            .as_str()
            .unwrap_or_default()
            .contains("temporary replica"),
        "{m}"
    );
    let cleanup = &j["drill"]["cleanup"];
    assert_eq!(cleanup["complete"], true, "{cleanup}");
    let results: Vec<&str> = cleanup["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["result"].as_str().unwrap_or_default())
        .collect();
    assert!(
        results.contains(&"removed") && results.contains(&"restored"),
        "{cleanup}"
    );
    assert!(cleanup["seconds"].as_f64().is_some(), "{cleanup}");

    let after = production(f.snapshot().await);
    assert_eq!(before, after, "production changed");
    assert_eq!(leftovers(&f).await, Vec::<String>::new());

    // The journal names each resource before its creation, then its cleanup.
    let run = j["run_id"].as_str().expect("run id");
    let text = f.journal_text(run).await;
    let first_resource = text
        .find("\"drill_resource\"")
        .expect("drill_resource record");
    let first_start = text
        .find("\"type\":\"step_started\",\"step\":\"payments/drill-copy")
        .expect("the database step is journaled");
    assert!(first_resource < first_start, "{text}");
    assert!(text.contains("\"cleanup\""), "{text}");
    // `runs show` computes the same verdict from the journal alone.
    let shown = f.show(run).await;
    assert_eq!(
        shown["report"]["drill"]["verdicts"][0]["verdict"], "PASS",
        "{shown}"
    );
    verified_until_the_world_changes(&f, run).await;
}

/// After a passing drill the plan is verified: `status` reads the world
/// and finds the inventory the drill journaled before it acted. A standby
/// maximum lowered since makes it not verified, the difference named.
async fn verified_until_the_world_changes(f: &Fixture, run: &str) {
    let verified = |ran: crate::fixture::Ran| {
        let j = ran.json();
        j["plans"][0]["verified"].clone()
    };
    let status = ["status", "--plan", "payments", "--output", "json"];
    let v = verified(f.drctl(&status).await);
    assert_eq!(v["verified"], true, "{v:#}");
    assert_eq!(v["drill"], run, "{v:#}");
    assert_eq!(v["staleness"], "within", "{v:#}");
    let clouds = world::clouds().await;
    let group = f.id("payments-api-use1");
    let g = (clouds.asg().describe_group(STANDBY, &group).await)
        .expect("describe")
        .expect("the standby group");
    let max = g.capacity.max;
    let lowered = drctl::cloud::Capacity {
        max: max - 1,
        ..g.capacity
    };
    (clouds.asg().set_capacity(STANDBY, &group, lowered).await).expect("lower its max");
    let v = verified(f.drctl(&status).await);
    assert_eq!(v["verified"], false, "{v:#}");
    let want = format!("payments-api max in {STANDBY} was {max}, now {}", max - 1);
    assert_eq!(v["differences"], serde_json::json!([want]), "{v:#}");
    let text = f.drctl(&["status", "--plan", "payments"]).await;
    assert!(
        text.out.contains("NOT VERIFIED") && text.out.contains(&want),
        "{}",
        text.all()
    );
    // The readiness matrix says the same, as the browser reads it.
    let page = f.state_dir().join("readiness.html");
    let path = page.to_string_lossy().into_owned();
    let ran = f
        .drctl(&["status", "--plan", "payments", "--html", &path])
        .await;
    assert!(page.is_file(), "{}", ran.all());
    let dom = crate::html::browse(&page, &["--dump-dom".into()]).await;
    assert!(
        dom.contains(r#"data-check="verified" data-mark="fail">FAIL"#) && dom.contains(&want),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-check="capacity" data-mark="ok">ok"#),
        "the lowered maximum still reaches the active size: {dom}"
    );
    dashboard_says_the_same(f, run, &want).await;
}

/// The report's dashboard (`report --format html --readiness`) draws the
/// matrix read live beside the drill it read from the journals: the same
/// cells as `status --html`, drawn in their colours, in a real browser.
async fn dashboard_says_the_same(f: &Fixture, run: &str, want: &str) {
    let page = f.state_dir().join("dashboard.html");
    let path = page.to_string_lossy().into_owned();
    let args = ["report", "--plan", "payments", "--format", "html"];
    let ran = f
        .drctl(&[&args[..], &["--readiness", "--out", &path]].concat())
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let dom = crate::html::browse(&page, &["--dump-dom".into()]).await;
    for said in [
        r#"<section id="readiness">"#,
        r#"data-check="verified" data-mark="fail">FAIL"#,
        r#"data-check="capacity" data-mark="ok">ok"#,
        want,
        run,
        "but for the readiness read from the clouds",
    ] {
        assert!(dom.contains(said), "the dashboard lacks {said:?}: {dom}");
    }
    // The screenshot is kept beside the report's (target/test-artifacts).
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&kept).expect("the artifacts' directory");
    let shot = kept.join("dashboard.png");
    crate::html::browse(&page, &[format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // Without --readiness the report reads no cloud and says so.
    let plain = f.drctl(&[&args[..], &["--out", &path]].concat()).await;
    assert_eq!(plain.code, Some(0), "{}", plain.all());
    let text = std::fs::read_to_string(&page).expect("the report");
    assert!(!text.contains(r#"id="readiness""#) && text.contains("and nothing else"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_dry_run_shows_every_call_and_changes_nothing() {
    crate::needs_emulators!();
    let f = Fixture::new("drilldry").await;
    let before = f.snapshot().await;
    let ran = f
        .drctl(&["drill", "--plan", "payments", "--to", STANDBY, "--dry-run"])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    for call in [
        "rds:CreateDBInstanceReadReplica",
        "rds:PromoteReadReplica",
        "rds:DeleteDBInstance",
        "autoscaling:UpdateAutoScalingGroup",
        "route53:ChangeResourceRecordSets",
    ] {
        assert!(ran.out.contains(call), "{call} missing:\n{}", ran.all());
    }
    assert_eq!(before, f.snapshot().await);
    assert!(f.runs().is_empty(), "a dry run journals nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_fails_the_drill_and_cleanup_still_completes() {
    crate::needs_emulators!();
    let f = Fixture::new("drillchk").await;
    // A check whose URL refuses connections.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let path = f.plans.path().join("payments.toml");
    let mut plan = std::fs::read_to_string(&path).expect("plan");
    plan.push_str(&format!(
        "\n[[check]]\nid = \"api-health\"\nregions = {{ us-west-2 = \"http://127.0.0.1:{port}/health\", us-east-1 = \"http://127.0.0.1:{port}/health\", eu-west-1 = \"http://127.0.0.1:{port}/health\" }}\nexpect_status = 200\ntimeout = \"1s\"\n"
    ));
    std::fs::write(&path, plan).expect("write plan");
    let before = production(f.snapshot().await);
    let ran = f
        .drctl(&[
            "drill",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--step-timeout",
            "3s",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let j = drill_of(&ran);
    let verdict = &j["drill"]["verdicts"][0];
    assert_eq!(verdict["verdict"], "FAIL", "{verdict}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("check"),
        "{verdict}"
    );
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", ran.all());
    assert_eq!(production(f.snapshot().await), before);
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
}

/// Stops a drill at `point` as a crash would, then resumes it: the resume
/// cleans up and nothing is left.
async fn crash_then_resume(point: &str) -> Result<(), String> {
    let f = Fixture::new("drillcr").await;
    let before = production(f.snapshot().await);
    let runs = f.runs();
    let crash = point
        .replace(
            "DB",
            &format!("payments/drill-copy:{}", f.id("payments-db")),
        )
        .replace("DNS", &format!("payments/drill-dns:{}", f.zone))
        .replace("SCALE", "payments/drill-raise:payments-api");
    let ran = f
        .drctl(&[
            "drill",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--inject-crash",
            &crash,
        ])
        .await;
    if ran.code != Some(1) {
        return Err(format!(
            "{point}: the crash did not stop the drill: {}",
            ran.all()
        ));
    }
    let run = f.new_run(&runs);
    let resumed = f.drctl(&["runs", "resume", &run, "--output", "json"]).await;
    let j = resumed.json();
    if j["drill"]["cleanup"]["complete"] != true {
        return Err(format!("{point}: cleanup incomplete: {}", resumed.all()));
    }
    if j["drill"]["verdicts"][0]["verdict"] != "FAIL" {
        return Err(format!(
            "{point}: a crashed drill cannot pass: {}",
            resumed.all()
        ));
    }
    let left = leftovers(&f).await;
    if !left.is_empty() {
        return Err(format!("{point}: left behind {left:?}"));
    }
    if production(f.snapshot().await) != before {
        return Err(format!("{point}: production changed"));
    }
    // Nothing more to resume.
    let again = f.drctl(&["runs", "resume", &run]).await;
    if again.code != Some(2) {
        return Err(format!("{point}: second resume: {}", again.all()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_drill_step_is_cleaned_up_by_resume() {
    crate::needs_emulators!();
    let points = ["before:DB", "after:DB", "after:SCALE", "after:DNS"];
    let results = futures::future::join_all(points.iter().map(|p| crash_then_resume(p))).await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_killed_mid_step_is_cleaned_up_by_resume() {
    crate::needs_emulators!();
    let f = Fixture::new("drillkill").await;
    let before = production(f.snapshot().await);
    let runs = f.runs();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(f.plans.path())
        .arg("--endpoints")
        .arg(world::endpoints_file())
        .arg("--state-dir")
        .arg(f.state_dir())
        .args(["drill", "--plan", "payments", "--to", STANDBY])
        .stdin(Stdio::null())
        .envs(world::run_key_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drctl");
    // Kill it once the temporary replica exists (it waits for a lag datapoint then).
    until_temp_replica(&f, &mut child).await;
    child.kill().await.expect("kill -9");
    let run = f.new_run(&runs);
    let resumed = f.drctl(&["runs", "resume", &run, "--output", "json"]).await;
    assert_eq!(
        resumed.code,
        Some(1),
        "an interrupted drill does not pass: {}",
        resumed.all()
    );
    let j = resumed.json();
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", resumed.all());
    assert_eq!(
        j["drill"]["verdicts"][0]["verdict"],
        "FAIL",
        "{}",
        resumed.all()
    );
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    assert_eq!(production(f.snapshot().await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_removes_what_a_drill_left_after_its_journal_was_deleted() {
    crate::needs_emulators!();
    let f = Fixture::new("drillsw").await;
    let before = production(f.snapshot().await);
    let runs = f.runs();
    let crash = format!("after:payments/drill-dns:{}", f.zone);
    let ran = f
        .drctl(&[
            "drill",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--inject-crash",
            &crash,
        ])
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let run = f.new_run(&runs);
    assert!(
        !leftovers(&f).await.is_empty(),
        "the crash left the drill's resources"
    );
    // The laptop is lost: no journal, no lock.
    std::fs::remove_dir_all(f.state_dir()).expect("remove state");

    // Not expired yet: a plain sweep leaves a drill that may still run.
    let listed = f
        .drctl(&[
            "drill",
            "sweep",
            "--plan",
            "payments",
            "--dry-run",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    let found = listed.json()["found"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours: Vec<&Value> = found
        .iter()
        .filter(|x| x.to_string().contains(&f.suffix))
        .collect();
    assert!(
        ours.len() >= 3,
        "database, group and records found: {found:?}"
    );
    assert!(ours.iter().all(|x| x["expired"] == false), "{ours:?}");

    let raised = standby_group(&f).await;
    assert!(has_drill_tags(&raised), "{raised:?}");
    let swept = f
        .drctl(&[
            "drill", "sweep", "--plan", "payments", "--all", "--output", "json",
        ])
        .await;
    // Without the drill's journal its marks on the group stand in for it:
    // still on the group, no failover has taken them off, and the plan's
    // data is not written in the standby region; the group goes back to
    // the size they hold, and everything else is removed.
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    let cleaned = swept.json()["cleaned"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        cleaned
            .iter()
            .any(|c| c["resource"]["type"] == "copy" && c["result"] == "removed"),
        "{cleaned:?}"
    );
    assert!(
        cleaned
            .iter()
            .any(|c| c["resource"]["type"] == "raised" && c["result"] == "restored"),
        "{cleaned:?}"
    );
    let left = standby_group(&f).await;
    assert!(!has_drill_tags(&left), "{left:?}");
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    assert_eq!(production(f.snapshot().await), before);
    // The sweep is journaled as a run of its own.
    let sweeps: Vec<String> = f
        .runs()
        .into_iter()
        .filter(|r| r.contains("sweep"))
        .collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?} (drill run was {run})");
}

/// Schedules the fixture's payments drill every minute, so that a slot is
/// due now.
fn every_minute(f: &Fixture) {
    let path = f.plans.path().join("payments.toml");
    let plan = std::fs::read_to_string(&path)
        .expect("plan")
        .replace("schedule = \"0 3 * * MON\"", "schedule = \"* * * * *\"");
    std::fs::write(&path, plan).expect("write plan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_at_the_same_slot_start_exactly_one_drill() {
    crate::needs_emulators!();
    let f = Fixture::new("drsched").await;
    every_minute(&f);
    let pass = ["schedule", "run", "--plan", "payments"];
    let (a, b) = tokio::join!(f.drctl(&pass), f.drctl(&pass));
    for r in [&a, &b] {
        assert!(matches!(r.code, Some(0)), "{}", r.all());
    }
    // A third pass right after finds its slot taken (or, past a minute
    // boundary, runs the next slot once).
    let c = f.drctl(&pass).await;
    assert_eq!(c.code, Some(0), "{}", c.all());

    let mut drills: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in f.runs() {
        let j = f.show(&run).await;
        let first = &j["records"][0]["event"];
        let slot = first["flags"]["schedule_slot"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let refused = j["report"]["outcome"] == "refused";
        if !slot.is_empty() && !refused {
            drills.entry(slot).or_default().push(run);
        }
    }
    assert!(!drills.is_empty(), "a drill ran:\n{}\n{}", a.all(), b.all());
    for (slot, runs) in &drills {
        assert_eq!(
            runs.len(),
            1,
            "slot {slot} ran {runs:?}:\n{}\n{}",
            a.all(),
            b.all()
        );
    }
    if drills.len() == 1 {
        // Every pass saw the same slot: all but one found it taken.
        let said = format!("{}{}{}", a.out, b.out, c.out);
        assert_eq!(said.matches("taken by run").count(), 2, "{said}");
    }
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
}

/// Starts `drctl drill` for the fixture's payments plan in the background,
/// and waits until its temporary replica exists.
async fn drill_until_replica(f: &Fixture, extra: &[&str]) -> tokio::process::Child {
    let mut args = vec![
        "drill", "--plan", "payments", "--to", STANDBY, "--output", "json",
    ];
    args.extend_from_slice(extra);
    until_replica(f, &args).await
}

/// Starts drctl with `args` in the background, on the fixture's state,
/// through `endpoints`, with `env`.
fn spawn(
    f: &Fixture,
    args: &[&str],
    env: &[(&str, &str)],
    endpoints: &std::path::Path,
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(["--color", "never", "--plans"])
        .arg(f.plans.path())
        .arg("--endpoints")
        .arg(endpoints)
        .args(f.state_args())
        .args(args)
        .stdin(Stdio::null())
        .envs(world::run_key_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn drctl")
}

/// Starts drctl with `args` in the background and waits until a temporary
/// replica of the fixture's exists.
async fn until_replica(f: &Fixture, args: &[&str]) -> tokio::process::Child {
    let mut child = spawn(f, args, &[], &world::endpoints_file());
    until_temp_replica(f, &mut child).await;
    child
}

/// Waits until a temporary replica of the fixture's exists in the standby
/// region (made by the drill `child`; it fails at once if the drill ends
/// first).
async fn until_temp_replica(f: &Fixture, child: &mut tokio::process::Child) {
    let clouds = world::clouds().await;
    world::wait_for(
        "the drill's temporary replica",
        world::PATIENCE,
        async || {
            let listed = (clouds.database.list_instances(STANDBY).await)
                .map_err(|e| format!("listing the standby's instances: {e}"))?;
            if listed.iter().any(|i| temp_of(f, i)) {
                return Ok(());
            }
            world::running(child, "the drill", "its temporary replica appeared").await;
            Err(format!(
                "{} instances, none of them the drill's",
                listed.len()
            ))
        },
    )
    .await;
}

/// Waits for a background drill and returns its exit code and JSON report.
async fn finished(child: tokio::process::Child) -> (Option<i32>, Value, String) {
    let out = tokio::time::timeout(world::PATIENCE, child.wait_with_output())
        .await
        .expect("the drill ends")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    (out.status.code(), json, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_drill_and_it_cleans_up_before_exiting() {
    crate::needs_emulators!();
    let f = Fixture::new("drterm").await;
    let before = production(f.snapshot().await);
    let child = drill_until_replica(&f, &[]).await;
    let pid = child.id().expect("pid") as i32;
    // SIGTERM, as systemd or Kubernetes stop a scheduled drill.
    assert_eq!(send_signal(pid, 15), 0);
    let (code, j, all) = finished(child).await;
    assert_eq!(code, Some(1), "{all}");
    let d = &j["drill"];
    assert!(
        d["interrupted"]
            .as_str()
            .unwrap_or_default()
            .contains("SIGTERM"),
        "{all}"
    );
    assert_eq!(d["verdicts"][0]["verdict"], "FAIL", "{all}");
    assert_eq!(d["cleanup"]["complete"], true, "{all}");
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    assert_eq!(production(f.snapshot().await), before);
}

/// Regression: `schedule run` (as cron, systemd or a CronJob run it) gave
/// its drill no stop signal, so a SIGTERM killed it mid-drill and left the
/// temporary replica and the raised group behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_scheduled_drill_and_it_cleans_up_before_exiting() {
    crate::needs_emulators!();
    let f = Fixture::new("drschterm").await;
    every_minute(&f);
    let before = production(f.snapshot().await);
    let child = until_replica(&f, &["schedule", "run", "--plan", "payments"]).await;
    let pid = child.id().expect("pid") as i32;
    assert_eq!(send_signal(pid, 15), 0);
    let out = tokio::time::timeout(world::PATIENCE, child.wait_with_output())
        .await
        .expect("the pass ends")
        .expect("output");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("cleanup complete"), "{all}");
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    assert_eq!(production(f.snapshot().await), before);
    // The drill's journal says it was interrupted, and is cleaned up.
    let drill = f
        .runs()
        .into_iter()
        .find(|r| !r.contains("-slot-"))
        .expect("the drill's run");
    let j = f.show(&drill).await;
    let d = &j["report"]["drill"];
    assert!(!d["interrupted"].is_null(), "{j}");
    assert_eq!(d["cleanup"]["complete"], true, "{j}");
}

/// `kill(2)` through the `kill` command (no libc dependency in the tests).
fn send_signal(pid: i32, signal: i32) -> i32 {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.code().unwrap_or(-1))
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_duration_aborts_a_drill_into_cleanup() {
    crate::needs_emulators!();
    let f = Fixture::new("drmax").await;
    let before = production(f.snapshot().await);
    // The emulators create a replica in well under a second, so the drill
    // could end before its limit: the replica's creation answers 3 s late
    // (it is made at once), which holds the drill past its 1 s maximum and
    // leaves cleanup a replica whose answer it never saw.
    let proxied = Proxied::start(false).await;
    proxied.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("CreateDBInstanceReadReplica"),
        Fault::DelayAnswer(Duration::from_secs(3)),
        1,
    );
    let ran = f
        .drctl_with(
            &[
                "drill",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--max-duration",
                "1s",
                "--output",
                "json",
            ],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let d = &ran.json()["drill"];
    assert!(
        d["interrupted"]
            .as_str()
            .unwrap_or_default()
            .contains("maximum duration"),
        "{}",
        ran.all()
    );
    assert_eq!(d["cleanup"]["complete"], true, "{}", ran.all());
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    assert_eq!(production(f.snapshot().await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_during_a_drill_preempts_it_and_keeps_what_it_owns() {
    crate::needs_emulators!();
    let f = Fixture::new("drpre").await;
    let child = drill_until_replica(&f, &[]).await;
    // No --force-unlock: a real failover takes a drill's lock over.
    let failover = f.failover_payments(&[]).await;
    assert_eq!(failover.code, Some(0), "{}", failover.all());
    assert!(failover.err.contains("drill"), "{}", failover.all());
    let (code, j, all) = finished(child).await;
    assert_eq!(code, Some(1), "{all}");
    let d = &j["drill"];
    assert!(
        d["interrupted"]
            .as_str()
            .unwrap_or_default()
            .contains("preempted"),
        "{all}"
    );
    assert_eq!(d["cleanup"]["complete"], true, "{all}");
    // The failover's state stands: the real replica promoted, the group at
    // its active capacity, the records on the standby; nothing of the drill left.
    let after = f.snapshot().await;
    assert_eq!(
        after.groups[&f.id("payments-api-use1")],
        (2, 4, 8),
        "{after:?}"
    );
    assert!(
        after.databases[&f.id("payments-db-use1")].starts_with("primary"),
        "{after:?}"
    );
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
    // Journaled in both runs.
    let drill_run = j["run_id"].as_str().expect("run id");
    let text = f.journal_text(drill_run).await;
    assert!(
        text.contains("\"lock_lost\"") && text.contains("preempted by failover"),
        "{text}"
    );
    assert_eq!(
        f.audit(drill_run).await.code,
        Some(0),
        "the drill's chain verifies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackout_window_refuses_a_drill_and_skips_its_slot() {
    crate::needs_emulators!();
    let f = Fixture::new("drblack").await;
    let path = f.plans.path().join("payments.toml");
    let plan = std::fs::read_to_string(&path).expect("plan").replace(
        "schedule = \"0 3 * * MON\"",
        "schedule = \"* * * * *\"\nblackout = [{ start = \"0 * * * *\", for = \"2h\", reason = \"test freeze\" }]",
    );
    std::fs::write(&path, plan).expect("write plan");
    let before = production(f.snapshot().await);
    let ran = f
        .drctl(&["drill", "--plan", "payments", "--to", STANDBY])
        .await;
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(
        ran.err.contains("test freeze") && ran.err.contains("--ignore-blackout"),
        "{}",
        ran.all()
    );
    let pass = f.drctl(&["schedule", "run", "--plan", "payments"]).await;
    assert_eq!(pass.code, Some(0), "{}", pass.all());
    assert!(
        pass.out.contains("skipped") && pass.out.contains("test freeze"),
        "{}",
        pass.all()
    );
    // The skip is recorded (the slot is taken); no drill ran.
    let again = f.drctl(&["schedule", "run", "--plan", "payments"]).await;
    assert!(
        again.out.contains("taken by run") || again.out.contains("skipped"),
        "{}",
        again.all()
    );
    assert_eq!(production(f.snapshot().await), before);
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_drill_fails_over_for_real_then_fails_back_home() {
    crate::needs_emulators!();
    let f = Fixture::new("drswitch").await;
    let before = f.snapshot().await;
    // Disruptive: without approval it is refused.
    let refused = f
        .drctl(&[
            "drill",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--depth",
            "switchover",
        ])
        .await;
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(refused.err.contains("DISRUPTIVE"), "{}", refused.all());
    let ran = f
        .drctl(&[
            "drill",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--depth",
            "switchover",
            "--approve",
            "quarterly switchover",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let j = ran.json();
    assert_eq!(j["drill"]["kind"], "drill");
    assert_eq!(j["drill"]["drill"]["depth"], "switchover", "{j}");
    assert_eq!(j["drill"]["drill"]["verdicts"][0]["verdict"], "PASS", "{j}");
    assert!(
        j["drill"]["measures"][0]["rpo"]["seconds"]
            .as_f64()
            .is_some(),
        "{j}"
    );
    let kinds: Vec<&str> = j["failback"]
        .as_array()
        .expect("failback runs")
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["reprotect", "failback", "reprotect"], "{j}");
    assert_eq!(j["back_home"], true);
    // Home again: every record as before, the home instance a primary and
    // the standby a replica of it.
    let after = f.snapshot().await;
    assert_eq!(after.records, before.records);
    assert!(
        after.databases[&f.id("payments-db")].starts_with("primary"),
        "{after:?}"
    );
    assert!(
        after.databases[&f.id("payments-db-use1")].starts_with("replica"),
        "{after:?}"
    );
}

/// The checkout fixture's control objects: `(region, object)` per region.
fn checkout_controls(f: &Fixture) -> Vec<(&'static str, drctl::cloud::ObjectUrl)> {
    [
        ("us-east-1", "use1"),
        ("us-west-2", "usw2"),
        ("eu-west-1", "euw1"),
    ]
    .into_iter()
    .map(|(region, tag)| {
        let bucket = f.id(&format!("drctl-control-{tag}"));
        let url = drctl::cloud::ObjectUrl::parse(&format!("s3://{bucket}/checkout/checkout"))
            .expect("url");
        (region, url)
    })
    .collect()
}

/// Whether a health check reads one of the fixture's checkout controls
/// (production's or a drill's), and whether it is a drill's.
fn checkout_check(f: &Fixture, h: &drctl::cloud::HealthCheck) -> Option<bool> {
    let (_, url) = drctl::cloud::control::control_of(h)?;
    (url.bucket.ends_with(&f.suffix) && url.key.starts_with("checkout/checkout"))
        .then(|| url.key.contains(".drill-"))
}

/// Checkout's data-plane setup, as read with the raw adapters: production's
/// (every record of the zone that is not a drill's, every health check
/// reading a production control, each control's bytes) and what drills left
/// (drill records, drill health checks, drill controls).
async fn checkout_state(f: &Fixture) -> (BTreeMap<String, String>, Vec<String>) {
    let clouds = world::clouds().await;
    let (mut production, mut left) = (BTreeMap::new(), Vec::new());
    let zone = (clouds.dns.find_zone(&f.zone).await)
        .expect("find zone")
        .expect("zone");
    for r in clouds.dns.list_records(&zone, "").await.expect("list") {
        if r.name.starts_with("drill-") {
            left.push(format!("record {} {:?}", r.name, r.set_identifier));
        } else {
            production.insert(
                format!("record {} {} {:?}", r.name, r.rtype, r.set_identifier),
                format!("{r:?}"),
            );
        }
    }
    for h in clouds.dns.list_health_checks().await.expect("checks") {
        match checkout_check(f, &h) {
            Some(false) => {
                production.insert(format!("health check {}", h.id), format!("{h:?}"));
            }
            Some(true) => left.push(format!("health check {} ({})", h.id, h.path)),
            None => {}
        }
    }
    for (region, url) in checkout_controls(f) {
        let body = clouds.objects.get(region, &url).await.expect("GetObject");
        production.insert(
            format!("control {url}"),
            format!(
                "{:?}",
                body.map(|b| String::from_utf8_lossy(&b).to_string())
            ),
        );
        let prefix = drctl::cloud::ObjectUrl {
            key: format!("{}.drill-", url.key),
            ..url.clone()
        };
        let listing = (clouds.objects.list(region, &prefix, false).await).expect("list controls");
        left.extend(listing.keys.into_iter().map(|k| format!("control {k}")));
    }
    (production, left)
}

/// Checkout's production data-plane setup ([`checkout_state`]).
async fn checkout_setup(f: &Fixture) -> BTreeMap<String, String> {
    checkout_state(f).await.0
}

/// What drills of checkout left ([`checkout_state`]).
async fn checkout_leftovers(f: &Fixture) -> Vec<String> {
    checkout_state(f).await.1
}

/// Asserts that `cleaned` (cleanup or sweep results, as JSON) removed drill
/// controls, health checks and records.
fn removed_every_kind_of_copy(cleaned: &Value) {
    let kinds: Vec<String> = (cleaned.as_array().into_iter().flatten())
        .map(|r| format!("{} {}", r["resource"]["type"], r["result"]))
        .collect();
    for kind in ["control", "health_check", "record"] {
        assert!(
            kinds.contains(&format!("\"{kind}\" \"removed\"")),
            "{kind} removed: {kinds:?}"
        );
    }
}

/// The drill of checkout to us-west-2, with `extra` arguments.
async fn checkout_drill(f: &Fixture, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec!["drill", "--plan", "checkout", "--to", "us-west-2"];
    args.extend_from_slice(extra);
    f.drctl(&args).await
}

/// The CNAME the world's DNS data plane answers for `name`, asked
/// directly (not through drctl's code).
async fn cname(name: &str) -> Vec<String> {
    use crate::dnsplane::{Proto, Reply, ask, resolver};
    let cname = hickory_resolver::proto::rr::RecordType::CNAME;
    match ask(&resolver(Proto::Udp), name, cname).await {
        Reply::Records(v, _) => v.iter().map(|x| x.to_ascii_lowercase()).collect(),
        other => vec![format!("{other:?}")],
    }
}

/// The drill-control step's journaled outputs.
fn drill_control_outputs(text: &str) -> Value {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| {
            r["event"]["type"] == "step_succeeded" && r["event"]["step"] == "checkout/drill-control"
        })
        .map(|r| r["event"]["outputs"].clone())
        .unwrap_or_else(|| panic!("drill-control succeeded: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_drill_switches_its_own_controls_and_leaves_production_byte_identical() {
    crate::needs_emulators!();
    let f = crate::regions::checkout_world("drdp").await;
    let before = checkout_setup(&f).await;
    let t0 = std::time::Instant::now();
    let ran = checkout_drill(&f, &["--output", "json"]).await;
    let took = t0.elapsed();
    eprintln!("checkout drill (data-plane mode): {took:?}");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let j = drill_of(&ran);
    assert_eq!(j["outcome"], "succeeded", "{}", ran.all());
    assert_eq!(
        j["drill"]["verdicts"][0]["verdict"],
        "PASS",
        "{}",
        ran.all()
    );
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", ran.all());
    let m = &j["measures"][0];
    assert!(m["rto"]["seconds"].as_f64().is_some_and(|s| s > 0.0), "{m}");
    let steps = j["steps"].to_string();
    assert!(
        steps.contains("checkout/drill-control") && !steps.contains("drill-dns"),
        "{steps}"
    );

    // The drill names resolved to the target at the world's DNS data plane.
    let run = j["run_id"].as_str().expect("run id");
    let out = drill_control_outputs(&f.journal_text(run).await);
    let resolved = out["resolved"].as_array().expect("resolved");
    assert!(!resolved.is_empty(), "{out}");
    for r in resolved {
        assert!(
            r["name"].as_str().unwrap_or_default().starts_with("drill-"),
            "{r}"
        );
        assert_eq!(
            r["values"][0].as_str().map(str::to_ascii_lowercase),
            Some(f.host("checkout-usw2").to_ascii_lowercase()),
            "{r}"
        );
    }
    let server = world::vars()
        .iter()
        .find(|(k, _)| k.as_str() == "DRCTL_DNS_SERVER")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        out["servers"]
            .as_str()
            .unwrap_or_default()
            .contains(&server),
        "{out} asked, not {server}"
    );
    // Every temporary was journaled and removed.
    removed_every_kind_of_copy(&j["drill"]["cleanup"]["resources"]);
    assert_eq!(checkout_leftovers(&f).await, Vec::<String>::new());
    assert_eq!(checkout_setup(&f).await, before, "production changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_checkout_drill_answers_with_the_target_and_a_sweep_removes_its_copies() {
    crate::needs_emulators!();
    let f = crate::regions::checkout_world("drdpsw").await;
    let before = checkout_setup(&f).await;
    let runs = f.runs();
    let ran = checkout_drill(&f, &["--inject-crash", "after:checkout/drill-control"]).await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let run = f.new_run(&runs);
    let left = checkout_leftovers(&f).await;
    assert!(
        left.iter().any(|l| l.starts_with("control"))
            && left.iter().any(|l| l.starts_with("health check"))
            && left.iter().any(|l| l.starts_with("record")),
        "the crash left the drill's copies: {left:?}"
    );
    // Asked directly (not through drctl's code): the drill name answers
    // with the target, production's with home.
    let name = drctl::steps::drill_names::record_name(&run, &f.host("checkout"));
    assert_eq!(
        cname(&name).await,
        [f.host("checkout-usw2").to_ascii_lowercase()]
    );
    assert_eq!(
        cname(&f.host("checkout")).await,
        [f.host("checkout-use1").to_ascii_lowercase()],
        "production"
    );
    // The laptop is lost: a sweep finds the copies by their names alone,
    // and the group the drill raised by its marks, which return it (no
    // failover took them off; the plan's data is not written there).
    std::fs::remove_dir_all(f.state_dir()).expect("remove state");
    let swept = f
        .drctl(&[
            "drill", "sweep", "--plan", "checkout", "--all", "--output", "json",
        ])
        .await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    let json = swept.json();
    let capacity: Vec<&Value> = (json["cleaned"].as_array().into_iter().flatten())
        .filter(|c| c["resource"]["type"] == "raised")
        .collect();
    assert!(
        !capacity.is_empty() && capacity.iter().all(|c| c["result"] == "restored"),
        "{}",
        swept.all()
    );
    let cleaned = swept.json()["cleaned"].to_string();
    for kind in ["control", "health_check", "record"] {
        assert!(
            cleaned.contains(&format!("\"{kind}\"")),
            "{kind}: {cleaned}"
        );
    }
    assert_eq!(checkout_leftovers(&f).await, Vec::<String>::new());
    assert_eq!(checkout_setup(&f).await, before, "production changed");
}

/// The standby group of the fixture's payments plan, as read now.
async fn standby_group(f: &Fixture) -> drctl::cloud::ComputeGroup {
    world::clouds()
        .await
        .asg()
        .describe_group(STANDBY, &f.id("payments-api-use1"))
        .await
        .expect("describe group")
        .expect("group exists")
}

/// Waits until `ready` holds of the standby group; fails naming `what` if
/// `child` ends first.
async fn until_group(
    f: &Fixture,
    child: &mut tokio::process::Child,
    what: &str,
    ready: impl Fn(&drctl::cloud::ComputeGroup) -> bool,
) {
    let clouds = world::clouds().await;
    let name = f.id("payments-api-use1");
    world::wait_for(what, world::PATIENCE, async || {
        let group = (clouds.asg().describe_group(STANDBY, &name).await)
            .map_err(|e| format!("describing {name}: {e}"))?;
        if group.as_ref().is_some_and(&ready) {
            return Ok(());
        }
        world::running(child, "the drill", what).await;
        Err(format!("{group:?}"))
    })
    .await;
}

fn has_drill_tags(g: &drctl::cloud::ComputeGroup) -> bool {
    g.tags.keys().any(|k| k.starts_with("drctl:drill"))
}

/// Regression: a preempted drill decided from the failover's best-effort
/// `lock_lost` record alone whether the group it raised was the
/// failover's. When that record was lost (here: the state bucket refuses
/// the failover's writes into the drill's journal), the drill's cleanup
/// set the group back to its pre-drill size: the failover's standby group
/// lost the instances the drill had started (raised again by the failover
/// if it scaled after, left scaled down if it had found it already at
/// active capacity before and was still removing the drill's tags). The
/// lease says who took the drill's lock: the capacity stays. Shared state
/// (S3), a short lease for the drill (renewed every 2 s, it learns soon
/// that it was preempted; long enough that renewals slowed by a busy
/// machine keep it until then); drctl's own for the failover, which
/// takes the drill's lock live or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_preempted_drill_cleanup_lowered_the_failovers_group() {
    crate::needs_emulators!();
    let f = Fixture::with_state("drlost", Some("s3")).await;
    let leases = [("DRCTL_LEASE_SKEW", "1s")];
    let runs = f.runs();
    let mut drill = spawn(
        &f,
        &[
            "drill", "--plan", "payments", "--to", STANDBY, "--output", "json",
        ],
        &[("DRCTL_LEASE", "6s"), ("DRCTL_LEASE_SKEW", "1s")],
        &world::endpoints_file(),
    );
    until_group(&f, &mut drill, "the drill raised the group", |g| {
        has_drill_tags(g) && g.capacity.desired == 4
    })
    .await;
    let drill_run = f.new_run(&runs);
    // The failover's writes into the drill's journal are refused (its
    // `lock_lost` record is lost), and its removal of the drill's tags is
    // held until the drill has ended, so that the drill's cleanup finds
    // them whichever of the two runs gets there first.
    let proxied = Proxied::start(false).await;
    proxied.proxy_for("AWS_ENDPOINT_URL_S3").inject(
        Match::MethodPath("PUT", format!("/runs/{drill_run}/")),
        Fault::Status(500),
        usize::MAX,
    );
    let drill_ended = Gate::new();
    proxied.proxy_for("AWS_ENDPOINT_URL_AUTO_SCALING").inject(
        Match::Action("DeleteTags"),
        Fault::Hold(drill_ended.clone()),
        1,
    );
    let endpoints = proxied.endpoints();
    let (failover, (code, j, all)) = tokio::join!(
        f.drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "integration test",
            ],
            &leases,
            &endpoints,
        ),
        async {
            let ended = finished(drill).await;
            drill_ended.open();
            ended
        }
    );
    assert_eq!(failover.code, Some(0), "{}", failover.all());
    assert_eq!(code, Some(1), "{all}");
    let text = f.journal_text(&drill_run).await;
    assert!(
        !text.contains("\"lock_lost\""),
        "the failover's record was lost: {text}"
    );
    let d = &j["drill"];
    assert!(
        d["interrupted"]
            .as_str()
            .unwrap_or_default()
            .contains("preempted"),
        "{all}"
    );
    let capacity = d["cleanup"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["resource"]["type"] == "raised")
        .unwrap_or_else(|| panic!("the capacity was cleaned up: {all}"))
        .clone();
    assert_eq!(capacity["result"], "kept", "{capacity}\n{all}");
    assert_eq!(d["cleanup"]["complete"], true, "{all}");
    let g = standby_group(&f).await;
    assert_eq!(
        (g.capacity.min, g.capacity.desired, g.capacity.max),
        (2, 4, 8),
        "the failover's capacity stays: {g:?}"
    );
    assert!(!has_drill_tags(&g), "{g:?}");
    // Never lowered meanwhile: the failover found the group at its capacity
    // (whether it scaled before or after the drill's cleanup).
    assert_eq!(
        proxied.forwarded("UpdateAutoScalingGroup"),
        0,
        "{}",
        failover.all()
    );
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
}

/// Regression: the failover's scale step removed a drill's tags only after
/// its wait for instances in service. A failover whose wait failed (here:
/// no instance ever reads InService, and `--step-timeout 8s`) left the
/// tags of the dead drill that had tagged the group, with the capacity to
/// "restore", and a later `drctl drill sweep` set the failover's group back
/// to its pre-drill size. Now the tags are gone as soon as the capacity is
/// set; and tags left anyway (put back here, as a failover that could not
/// remove them leaves them) are stale to the sweep, which reads in the
/// journals that a failover scaled the group after the drill started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_failed_failover_wait_left_drill_tags_and_a_sweep_lowered_the_group() {
    crate::needs_emulators!();
    let f = Fixture::new("drwait").await;
    let before = standby_group(&f).await;
    let runs = f.runs();
    // A drill that dies after tagging the group, while its capacity change
    // is in flight (never answered).
    let hang = Proxied::start(false).await;
    hang.proxy_for("AWS_ENDPOINT_URL_AUTO_SCALING").inject(
        Match::Action("UpdateAutoScalingGroup"),
        Fault::Hang,
        usize::MAX,
    );
    let mut drill = spawn(
        &f,
        &["drill", "--plan", "payments", "--to", STANDBY],
        &[],
        &hang.endpoints(),
    );
    until_group(&f, &mut drill, "the drill tagged the group", has_drill_tags).await;
    world::wait_for(
        "the drill's capacity change at the proxy",
        world::PATIENCE,
        async || {
            let log = hang.log();
            if log.iter().any(|l| l.contains("UpdateAutoScalingGroup")) {
                return Ok(());
            }
            world::running(&mut drill, "the drill", "its capacity change").await;
            Err(log.join("\n"))
        },
    )
    .await;
    drill.start_kill().expect("kill -9");
    drill.wait().await.expect("wait");
    let drill_run = f.new_run(&runs);
    let tags = standby_group(&f).await.tags;
    assert_eq!(tags[RUN_TAG], drill_run);

    // The failover sets the capacity; no instance ever reads InService.
    let pending = Proxied::start(false).await;
    pending.proxy_for("AWS_ENDPOINT_URL_AUTO_SCALING").inject(
        Match::Action("DescribeAutoScalingGroups"),
        Fault::Rewrite {
            from: "<LifecycleState>InService</LifecycleState>".into(),
            to: "<LifecycleState>Pending</LifecycleState>".into(),
        },
        usize::MAX,
    );
    let runs = f.runs();
    let failover = f
        .failover_payments_via(&pending.endpoints(), &["--step-timeout", "8s"])
        .await;
    assert_eq!(failover.code, Some(1), "{}", failover.all());
    assert!(
        failover.all().contains("4 instances serving"),
        "the wait failed: {}",
        failover.all()
    );
    let failover_run = f.new_run(&runs);
    let g = standby_group(&f).await;
    assert_eq!(
        (g.capacity.min, g.capacity.desired, g.capacity.max),
        (2, 4, 8),
        "{g:?}"
    );
    assert!(
        !has_drill_tags(&g),
        "the drill's tags came off with the capacity write: {g:?}"
    );

    // A sweep finds no raised group to lower.
    let sweep = || {
        f.drctl(&[
            "drill", "sweep", "--plan", "payments", "--all", "--output", "json",
        ])
    };
    let swept = sweep().await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    assert_eq!(standby_group(&f).await.capacity, g.capacity);

    // The tags back, as a failover that could not remove them leaves them:
    // the sweep reads that the failover scaled the group after the drill
    // started, removes the stale tags and keeps the capacity.
    world::clouds()
        .await
        .asg()
        .tag_group(STANDBY, &f.id("payments-api-use1"), &tags)
        .await
        .expect("tag");
    let swept = sweep().await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    let cleaned = swept.json()["cleaned"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let capacity = cleaned
        .iter()
        .find(|c| c["resource"]["type"] == "raised")
        .unwrap_or_else(|| panic!("the group was found: {}", swept.all()))
        .clone();
    assert_eq!(capacity["result"], "kept", "{}", swept.all());
    let detail = capacity["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&failover_run) && detail.contains("stale"),
        "{}",
        swept.all()
    );
    let g = standby_group(&f).await;
    assert_eq!(
        (g.capacity.min, g.capacity.desired, g.capacity.max),
        (2, 4, 8),
        "the sweep did not lower the failover's group: {g:?}"
    );
    assert!(!has_drill_tags(&g), "{g:?}");
    assert_ne!(g.capacity, before.capacity);
    assert_eq!(leftovers(&f).await, Vec::<String>::new());
}
