//! Drills of `plans/gcp/orders-gcp.toml` against the world's Google Cloud
//! (`localstack/gcp_emu.py`), through the CLI: a shadow drill clones the
//! Cloud SQL primary, raises the standby group and service, and ends with
//! production untouched and none of its resources left; a drill killed
//! after its last step is cleaned up by `drctl runs resume`; a switchover
//! drill moves the primary to us-east4 for real (a Cloud SQL switchover)
//! and back, with a measured RTO and an RPO of 0 by design.
//!
//! Each test seeds its own instances, groups and services (named with its
//! fixture's suffix, `gcp_mig::seed`) and counts only calls on them. Set
//! `DRCTL_GCP_ENDPOINT` to run against an emulator of one's own
//! (`world::gcp_endpoints_file`).

use crate::fixture::{Fixture, outputs};
use crate::gcp_mig::{Groups, calls, read, seed};
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";

/// The names of `fx`'s Cloud SQL pair and Cloud Run service.
fn names(fx: &Fixture) -> (String, String, String) {
    (
        fx.id("orders-sql"),
        fx.id("orders-sql-use4"),
        fx.id("orders-api"),
    )
}

/// Production as a drill must leave it: the primary in us-central1 with
/// its replica in us-east4, the standby group at its standby size (1),
/// the standby service at its floor (0), the home ones at theirs.
async fn production_as_seeded(fx: &Fixture, g: &Groups) {
    let (primary, replica, api) = names(fx);
    let clouds = world::clouds().await;
    let p = (clouds.cloud_sql.describe_sql(HOME, PROJECT, &primary).await)
        .expect("get")
        .expect("the primary");
    assert_eq!(p.role, drctl::cloud::DbRole::Primary, "{p:?}");
    let r = (clouds
        .cloud_sql
        .describe_sql(TARGET, PROJECT, &replica)
        .await)
        .expect("get")
        .expect("the replica");
    assert_eq!(r.role, drctl::cloud::DbRole::Replica(primary), "{r:?}");
    assert_eq!(read(TARGET, &g.target).await.0, 1, "standby group size");
    assert_eq!(read(HOME, &g.home).await.0, 3, "home group size");
    for (region, floor) in [(TARGET, 0), (HOME, 3)] {
        let s = (world::cloud_run().describe_run(region, PROJECT, &api).await)
            .expect("services.get")
            .expect("the service");
        assert_eq!(s.floor, floor, "{region}: {s:?}");
        assert!(
            !s.labels.keys().any(|k| k.starts_with("drctl-drill-")),
            "{region}: the drill's marks are gone: {s:?}"
        );
    }
}

/// The drill's clone of `run` is gone.
async fn no_clone_of(fx: &Fixture, run: &str) {
    let (_, replica, _) = names(fx);
    let clone = drctl::steps::drill_names::temp_database_id(run, &replica);
    let left = (world::clouds().await.cloud_sql)
        .describe_sql(HOME, PROJECT, &clone)
        .await
        .expect("get");
    assert_eq!(left, None, "the drill's clone {clone} is left");
}

fn drill<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "drill",
        "--plan",
        "orders-gcp",
        "--to",
        TARGET,
        "--output",
        "json",
    ];
    a.extend_from_slice(extra);
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_drill_of_orders_gcp_leaves_production_untouched_and_nothing_behind() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdrill").await;
    let g = seed(&fx, None).await;
    let ep = tempfile::tempdir().expect("tempdir");
    let endpoints = world::gcp_endpoints_file(ep.path());
    let runs = fx.runs();
    let o = fx.drctl_with(&drill(&[]), &[], &endpoints).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let j = o.json();
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
    assert_eq!(j["drill"]["verdicts"][0]["verdict"], "PASS", "{j}");
    let run = fx.new_run(&runs);
    production_as_seeded(&fx, &g).await;
    no_clone_of(&fx, &run).await;
    let (primary, _, _) = names(&fx);
    let clone = drctl::steps::drill_names::temp_database_id(&run, &fx.id("orders-sql-use4"));
    assert_eq!(calls(&format!("/instances/{primary}/clone")).await, 1);
    // Its delete (and the reads that proved it gone).
    assert!(calls(&format!("/instances/{clone}")).await >= 1);
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.target)).await,
        2,
        "raised once, returned once"
    );
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.home)).await,
        0
    );
    let show = fx.show(&run).await;
    let sql = outputs(&show, "orders-gcp/drill-copy:orders-sql");
    assert_eq!(sql["source"], format!("{PROJECT}/{primary}"), "{sql:#}");
    assert_eq!(sql["copy"], format!("{PROJECT}/{clone}"), "{sql:#}");
    assert!(sql["restore_point"].is_string(), "{sql:#}");
    let mig = outputs(&show, "orders-gcp/drill-raise:orders-workers");
    assert_eq!(
        (
            mig["before"].as_u64(),
            mig["raised_to"].as_u64(),
            mig["serving"].as_u64()
        ),
        (Some(1), Some(3), Some(3)),
        "{mig:#}"
    );
    let run_out = outputs(&show, "orders-gcp/drill-raise:orders-api");
    assert_eq!(
        (run_out["before"].as_u64(), run_out["raised_to"].as_u64()),
        (Some(0), Some(3)),
        "{run_out:#}"
    );
    // The drill's Cloud DNS record: made, done, read back, then removed;
    // production's record set untouched.
    let zone = fx.id("orders-zone");
    let dns = outputs(&show, &format!("orders-gcp/drill-dns:{PROJECT}/{zone}"));
    let record = dns["records"][0]["name"]
        .as_str()
        .expect("the drill record");
    assert!(record.starts_with("drill-"), "{dns:#}");
    let cloud_dns = world::clouds().await.cloud_dns;
    let left = (cloud_dns.read_record_set(PROJECT, &zone, record, "CNAME"))
        .await
        .expect("resourceRecordSets.list");
    assert_eq!(left, None, "the cleanup removed {record}");
    let prod = (cloud_dns.read_record_set(PROJECT, &zone, "orders.gcp.example.com.", "CNAME"))
        .await
        .expect("resourceRecordSets.list")
        .expect("production's record");
    assert_eq!(prod.rrdatas, ["orders-api-usc1.example.com."], "{prod:?}");
    // The report of it holds to the report's schema, GCP drill resources
    // and all.
    let rep = fx
        .drctl_with(&["report", "--format", "json"], &[], &endpoints)
        .await;
    assert_eq!(rep.code, Some(0), "{}", rep.all());
    crate::schema::assert_valid(
        &crate::schema::validator(),
        "the report of a GCP shadow drill",
        &rep.json(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_killed_after_its_last_step_is_cleaned_up_by_runs_resume() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdrillkill").await;
    let g = seed(&fx, None).await;
    let ep = tempfile::tempdir().expect("tempdir");
    let endpoints = world::gcp_endpoints_file(ep.path());
    let runs = fx.runs();
    let o = fx
        .drctl_with(
            &drill(&["--inject-crash", "after:orders-gcp/drill-raise:orders-api"]),
            &[],
            &endpoints,
        )
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(o.err.contains("injected crash point"), "{}", o.all());
    let run = fx.new_run(&runs);
    assert_eq!(
        read(TARGET, &g.target).await.0,
        3,
        "raised, left by the crash"
    );
    let o = fx
        .drctl_with(
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &endpoints,
        )
        .await;
    let j = o.json();
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
    assert_eq!(j["drill"]["verdicts"][0]["verdict"], "FAIL", "{}", o.all());
    production_as_seeded(&fx, &g).await;
    no_clone_of(&fx, &run).await;
}

/// Regression (a Cloud SQL drill clone and a Cloud DNS drill record set
/// were found only by their drill's journal). A drill that dies right
/// after its last step, swept from another machine with a state of its
/// own (no journal of the drill): the sweep lists the project's instances
/// (`instances.list`) and the zone's record sets
/// (`resourceRecordSets.list`), knows the clone and the record set by
/// their names and deletes them; production is only read.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_sweep_without_the_drills_journal_removes_its_clone_and_record_set() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdrillsqlsweep").await;
    seed(&fx, None).await;
    let ep = tempfile::tempdir().expect("tempdir");
    let endpoints = world::gcp_endpoints_file(ep.path());
    let runs = fx.runs();
    let crash = format!(
        "after:orders-gcp/drill-dns:{PROJECT}/{}",
        fx.id("orders-zone")
    );
    let o = fx
        .drctl_with(&drill(&["--inject-crash", &crash]), &[], &endpoints)
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    let run = fx.new_run(&runs);
    let record = drctl::steps::drill_names::record_name(&run, "orders.gcp.example.com.");
    let zone = fx.id("orders-zone");
    let cloud_dns = world::clouds().await.cloud_dns;
    let left = (cloud_dns.read_record_set(PROJECT, &zone, &record, "CNAME"))
        .await
        .expect("resourceRecordSets.list");
    assert!(left.is_some(), "the crash left the record set {record}");
    let (primary, replica, _) = names(&fx);
    let clone = drctl::steps::drill_names::temp_database_id(&run, &replica);
    let made = (world::clouds().await.cloud_sql)
        .describe_sql(HOME, PROJECT, &clone)
        .await
        .expect("get");
    assert!(made.is_some(), "the crash left the clone {clone}");

    let o = fx.sweep_elsewhere("orders-gcp", &endpoints).await;
    let cleaned = o.json()["cleaned"].as_array().cloned().unwrap_or_default();
    assert!(
        cleaned.iter().any(|c| c["resource"]["type"] == "copy"
            && c["resource"]["address"] == format!("{PROJECT}/{clone}")
            && c["result"] == "removed"),
        "{}\n{cleaned:#?}",
        o.all()
    );
    no_clone_of(&fx, &run).await;
    assert!(
        cleaned.iter().any(|c| c["resource"]["type"] == "record"
            && c["resource"]["kind"] == "clouddns"
            && c["resource"]["name"] == record.as_str()
            && c["result"] == "removed"),
        "{}\n{cleaned:#?}",
        o.all()
    );
    let left = (cloud_dns.read_record_set(PROJECT, &zone, &record, "CNAME"))
        .await
        .expect("resourceRecordSets.list");
    assert_eq!(left, None, "the sweep removed {record}");
    let prod = (cloud_dns.read_record_set(PROJECT, &zone, "orders.gcp.example.com.", "CNAME"))
        .await
        .expect("resourceRecordSets.list");
    assert!(prod.is_some(), "production's record set stays");
    let p = (world::clouds().await.cloud_sql)
        .describe_sql(HOME, PROJECT, &primary)
        .await
        .expect("get")
        .expect("the primary");
    assert_eq!(p.role, drctl::cloud::DbRole::Primary, "{p:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_switchover_drill_moves_the_primary_to_us_east4_and_back() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdrillsw").await;
    let g = seed(&fx, None).await;
    let ep = tempfile::tempdir().expect("tempdir");
    let endpoints = world::gcp_endpoints_file(ep.path());
    let o = fx
        .drctl_with(
            &drill(&["--depth", "switchover", "--approve", "quarterly switchover"]),
            &[],
            &endpoints,
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let j = o.json();
    assert_eq!(j["drill"]["drill"]["depth"], "switchover", "{j}");
    assert_eq!(j["back_home"], true, "{j}");
    let rto = j["drill"]["measures"][0]["rto"]["seconds"].as_f64();
    assert!(rto.is_some_and(|s| s > 0.0), "a measured RTO: {j}");
    assert_eq!(
        j["drill"]["measures"][0]["rpo"]["seconds"].as_f64(),
        Some(0.0),
        "{j}"
    );
    let basis = j["drill"]["measures"][0]["rpo"]["basis"].to_string();
    assert!(basis.contains("by design"), "{basis}");
    let kinds: Vec<&str> = (j["failback"].as_array().expect("failback runs").iter())
        .map(|r| r["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["reprotect", "failback", "reprotect"], "{j}");
    let failback = &j["failback"][1];
    assert_eq!(
        failback["measures"][0]["rpo"]["seconds"].as_f64(),
        Some(0.0),
        "{j}"
    );
    // Home again: the primary in us-central1, its DR replica in us-east4
    // (two switchovers, each turning the old primary into the replica).
    let (primary, replica, _) = names(&fx);
    let clouds = world::clouds().await;
    let p = (clouds.cloud_sql.describe_sql(HOME, PROJECT, &primary).await)
        .expect("get")
        .expect("the primary");
    assert_eq!(p.role, drctl::cloud::DbRole::Primary, "{p:?}");
    let r = (clouds
        .cloud_sql
        .describe_sql(TARGET, PROJECT, &replica)
        .await)
        .expect("get")
        .expect("the replica");
    assert_eq!(
        r.role,
        drctl::cloud::DbRole::Replica(primary.clone()),
        "{r:?}"
    );
    assert!(r.dr_replica, "{r:?}");
    assert_eq!(calls(&format!("/instances/{replica}/switchover")).await, 1);
    assert_eq!(calls(&format!("/instances/{primary}/switchover")).await, 1);
    // The standby group and service were raised by the failover and stay
    // raised (a real switchover: the failback raised the home side).
    assert_eq!(read(TARGET, &g.target).await.0, 3);
}
