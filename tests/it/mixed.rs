//! A plan on both clouds (`plans/gcp/storefront.toml`): an RDS database,
//! an Auto Scaling group and a Route 53 record on AWS, a Cloud SQL DR pair
//! and a Cloud Run service on GCP, its sites us-west-2 with us-central1
//! (home) and us-east-1 with us-east4. One failover moves both halves: one
//! run, one journal, one report with one RTO and an RPO measured on both
//! clouds, with both home regions dropped at the fault proxy; and a crash
//! at every step of it is resumed with every change sent once.
//!
//! The fixture's seed makes the plan's resources for its world
//! (`localstack/seed --suffix`: `storefront-*`, `catalogue-sql*`); the plan
//! is written renamed for them.

use crate::world::{Asg, AsgCalls};
use std::path::Path;

use drctl::cloud::DbRole;
use futures::StreamExt;

use crate::fixture::{Fixture, Proxied, Ran, records};
use crate::proxy::{Fault, Match};
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-west-2";
const TARGET: &str = "us-east-1";
const GCP_HOME: &str = "us-central1";
const GCP_TARGET: &str = "us-east4";

/// Writes `storefront.toml` into `fx`'s plans, renamed for its world.
fn write_plan(fx: &Fixture) {
    write_plan_to(fx, fx.plans.path());
}

/// Writes `storefront.toml`, renamed for `fx`'s world, into `dir`.
pub(crate) fn write_plan_to(fx: &Fixture, dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/storefront.toml");
    let mut t = std::fs::read_to_string(src).expect("the storefront plan");
    for id in [
        "storefront-db",
        "storefront-db-use1",
        "storefront-web-usw2",
        "storefront-web-use1",
        "catalogue-sql",
        "catalogue-sql-use4",
        "storefront-api",
    ] {
        t = t.replace(&format!("\"{id}\""), &format!("\"{}\"", fx.id(id)));
    }
    t = t.replace(
        "s3://drctl-evidence-use1/",
        &format!("s3://{}/", fx.id("drctl-evidence-use1")),
    );
    t = t.replace(
        "gs://drctl-evidence/",
        &format!("gs://{}/", fx.id("drctl-evidence")),
    );
    t = t.replace(".example.com.\"", &format!(".{}\"", fx.zone));
    t = t.replace("\"example.com.\"", &format!("\"{}\"", fx.zone));
    std::fs::write(dir.join("storefront.toml"), t).expect("write plan");
}

async fn failover(fx: &Fixture, endpoints: &Path, extra: &[&str]) -> Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "storefront",
        // The GCP name of the site: the same run as `--to us-east-1`.
        "--to",
        GCP_TARGET,
        "--approve",
        "both clouds test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], endpoints).await
}

/// Whether both halves stand in the target site: the RDS replica and the
/// Cloud SQL DR replica are primaries, the web group and the API's floor
/// raised, the record on the target's name.
async fn failed_over(fx: &Fixture) -> Result<(), String> {
    let clouds = world::clouds().await;
    let db = (clouds.database)
        .describe_instance(TARGET, &fx.id("storefront-db-use1"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the RDS replica is gone")?;
    let sql = (clouds.cloud_sql)
        .describe_sql(GCP_TARGET, PROJECT, &fx.id("catalogue-sql-use4"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the Cloud SQL replica is gone")?;
    let web = clouds
        .asg()
        .describe_group(TARGET, &fx.id("storefront-web-use1"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the web group is gone")?;
    let api = world::cloud_run()
        .describe_run(GCP_TARGET, PROJECT, &fx.id("storefront-api"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the API service is gone")?;
    let home_api = world::cloud_run()
        .describe_run(GCP_HOME, PROJECT, &fx.id("storefront-api"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the home API service is gone")?;
    let snap = fx.snapshot().await;
    let record = fx.record(&snap, "storefront", "CNAME");
    let want = format!("storefront-use1.{}", fx.zone.trim_end_matches('.'));
    let got = (
        db.role == DbRole::Primary,
        sql.role == DbRole::Primary,
        web.capacity.desired,
        api.floor,
        home_api.floor,
        record.starts_with(&want),
    );
    if got != (true, true, 2, 2, 2, true) {
        return Err(format!(
            "(RDS primary, Cloud SQL primary, web desired, API floor, home API floor, record) = {got:?}: {db:?} {sql:?} {record}"
        ));
    }
    Ok(())
}

/// The emulator's record of the calls on this world's GCP resources whose
/// method and path end as given.
async fn gcp_calls(method: &str, tail: &str) -> usize {
    (world::gcp_calls().await.iter())
        .filter(|c| c["method"] == method && c["path"].as_str().is_some_and(|p| p.ends_with(tail)))
        .count()
}

/// One run fails both halves over to the target site, with the home
/// region of each cloud dropped at the fault proxy (AWS's us-west-2 on
/// every AWS endpoint, GCP's us-central1 paths and the home Cloud SQL
/// instance): one journal, one report whose RTO is measured to the record
/// read back and whose RPO is read on both clouds (ReplicaLag and
/// replica_lag), the larger kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_on_both_clouds_fails_over_in_one_run_with_both_home_regions_dropped() {
    crate::needs_emulators!();
    let fx = Fixture::new("mixed").await;
    write_plan(&fx);
    let proxied = Proxied::start(false).await;
    for var in [
        "AWS_ENDPOINT_URL_RDS",
        "AWS_ENDPOINT_URL_ROUTE_53",
        "AWS_ENDPOINT_URL_CLOUDWATCH",
    ] {
        proxied
            .proxy_for(var)
            .inject(Match::Region(HOME), Fault::Drop, usize::MAX);
    }
    let gcp = proxied.proxy_for("DRCTL_GCP_ENDPOINT");
    for text in [
        format!("/locations/{GCP_HOME}/"),
        format!("/instances/{}?", fx.id("catalogue-sql")),
        format!("/instances/{}/", fx.id("catalogue-sql")),
    ] {
        gcp.inject(Match::PathContains(text), Fault::Drop, usize::MAX);
    }
    let runs = fx.runs();
    let o = failover(&fx, &proxied.endpoints(), &["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    failed_over(&fx).await.unwrap_or_else(|e| panic!("{e}"));
    let after = fx.runs();
    assert_eq!(after.len(), runs.len() + 1, "one run: {after:?}");
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let report = &show["report"];
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["target"], TARGET, "the site's name: {report:#}");
    let steps: Vec<&str> = (report["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["step"].as_str())
        .collect();
    for kind in [
        "/promote:storefront-db",
        "/promote:catalogue-sql",
        "/raise:",
        "/switch-dns:",
    ] {
        assert!(steps.iter().any(|s| s.contains(kind)), "{kind}: {steps:?}");
    }
    let m = &report["measures"][0];
    assert!(
        m["rto"]["seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{m:#}"
    );
    // The seed's lags: RDS 2 s (ReplicaLag), Cloud SQL 1.5 s (replica_lag).
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(2.0), "{m:#}");
    let text = m.to_string();
    assert!(
        text.contains("ReplicaLag") && text.contains("replica_lag"),
        "both clouds' RPO sources: {m:#}"
    );
    // No write reached either home region (reads there were dropped).
    let home_writes: Vec<String> = (proxied.writes().into_iter())
        .filter(|l| {
            l.contains(GCP_HOME)
                || l.contains(&format!("[{HOME}]"))
                || l.contains(&format!("/instances/{}/", fx.id("catalogue-sql")))
        })
        .collect();
    assert!(home_writes.is_empty(), "{home_writes:#?}");
    assert_eq!(fx.audit(&run).await.code, Some(0));
    // Its evidence on both clouds' storage, verified.
    for dest in [
        format!("s3://{}/storefront", fx.id("drctl-evidence-use1")),
        format!("gs://{}/storefront", fx.id("drctl-evidence")),
    ] {
        fx.assert_plan_evidence("storefront", &dest, &run)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{dest}: {e}\n{:#}",
                    crate::fixture::outputs(&show, "storefront/evidence")
                )
            });
    }
    assert!(
        records(&show).len() > steps.len(),
        "one journal holds both halves"
    );
}

/// A crash at each step of the plan on both clouds (one step at a time),
/// resumed with `runs resume`: the run ends succeeded,
/// both halves in the target, each step succeeded once, and every change
/// sent once: one RDS promotion, one Cloud SQL failover, one Cloud Run
/// patch, one Route 53 batch.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_every_step_of_a_plan_on_both_clouds_is_resumed() {
    crate::needs_emulators!();
    // Every step, crashed after (and the GCP steps, whose operations a
    // resumed run must find rather than start again, before too); the
    // payments crash test covers the AWS steps before and after.
    let points: Vec<(&str, &str)> = vec![
        ("after", "preflight"),
        ("after", "raise:storefront-web"),
        ("before", "raise:storefront-api"),
        ("after", "raise:storefront-api"),
        ("after", "promote:storefront-db"),
        ("before", "promote:catalogue-sql"),
        ("after", "promote:catalogue-sql"),
        ("before", "settle-sql:catalogue-sql"),
        ("after", "switch-dns:ZONE"),
        ("after", "verify-dns:ZONE"),
        ("before", "evidence"),
    ];
    let n = points.len();
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(points)
        .map(|(when, step)| async move {
            (format!("{when}:{step}"), crash_and_resume(when, step).await)
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let failures: Vec<String> = (results.iter())
        .filter_map(|(label, r)| r.as_ref().err().map(|e| format!("{label}: {e}")))
        .collect();
    assert_eq!(results.len(), n);
    assert!(
        failures.is_empty(),
        "{} of {n} crash points failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

async fn crash_and_resume(when: &str, step: &str) -> Result<(), String> {
    let fx = Fixture::new("mixcrash").await;
    write_plan(&fx);
    // Resource ids renamed for the world are in step ids too.
    let local = match step.split_once(':') {
        Some((kind, "ZONE")) => format!("{kind}:{}", fx.zone),
        Some((kind, id @ ("storefront-db" | "catalogue-sql" | "storefront-api"))) => {
            format!("{kind}:{}", fx.id(id))
        }
        _ => step.to_string(),
    };
    let point = format!("{when}:storefront/{local}");
    let proxied = Proxied::start(false).await;
    let fail = |what: &str, o: &Ran| Err(format!("{point}: {what}\n{}", o.all()));
    let o = failover(
        &fx,
        &proxied.endpoints(),
        &["--inject-crash", &point, "--parallelism", "1"],
    )
    .await;
    if o.code != Some(1) || !o.err.contains("injected crash point") {
        return fail("expected the run to stop at the crash point (exit 1)", &o);
    }
    let runs = fx.runs();
    let Some(run) = runs.iter().next().cloned() else {
        return Err(format!("{point}: no run"));
    };
    let o = fx
        .drctl_with(
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &proxied.endpoints(),
        )
        .await;
    if o.code != Some(0) {
        return fail("runs resume", &o);
    }
    failed_over(&fx)
        .await
        .map_err(|e| format!("{point}: {e}"))?;
    let show = fx.show(&run).await;
    if show["report"]["outcome"] != "succeeded" {
        return Err(format!("{point}: outcome {}", show["report"]["outcome"]));
    }
    let recs = records(&show);
    let succeeded = |s: &str| {
        recs.iter()
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == s)
            .count()
    };
    let listed = show["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Eight steps, and settle-sql (the Cloud SQL old primary's side).
    if listed.len() != 9 {
        return Err(format!("{point}: steps {listed:#?}"));
    }
    for s in &listed {
        let id = s["step"].as_str().unwrap_or_default();
        if s["state"] != "succeeded" || succeeded(id) != 1 {
            return Err(format!(
                "{point}: step {id} is {} with {} successes",
                s["state"],
                succeeded(id)
            ));
        }
    }
    let batches = (proxied.log().iter())
        .filter(|l| l.starts_with("POST ") && l.contains("/rrset"))
        .count();
    let sent = (
        proxied.forwarded("PromoteReadReplica"),
        gcp_calls(
            "POST",
            &format!("/instances/{}/promoteReplica", fx.id("catalogue-sql-use4")),
        )
        .await,
        gcp_calls(
            "PATCH",
            &format!(
                "/locations/{GCP_TARGET}/services/{}",
                fx.id("storefront-api")
            ),
        )
        .await,
        batches,
    );
    if sent != (1, 1, 1, 1) {
        return Err(format!(
            "{point}: (RDS promotions, Cloud SQL failovers, Cloud Run patches, Route 53 batches) sent: {sent:?}"
        ));
    }
    Ok(())
}

/// The way back for a plan on both clouds: after an unplanned failover,
/// `drctl failback` reprotects first (the RDS replica made again; the
/// former Cloud SQL primary waited for until Cloud SQL rejoins it as a
/// replica, then designated the DR replica through `instances.patch`),
/// then fails both halves back home: RDS by promotion, Cloud SQL by a
/// switchover (nothing lost), the record home.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_on_both_clouds_is_reprotected_and_failed_back_home() {
    crate::needs_emulators!();
    let fx = Fixture::new("mixback").await;
    write_plan(&fx);
    let endpoints = world::endpoints_file();
    let o = failover(&fx, &endpoints, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    failed_over(&fx).await.unwrap_or_else(|e| panic!("{e}"));
    let runs = fx.runs();
    let o = fx
        .drctl_with(
            &[
                "failback",
                "--plan",
                "storefront",
                "--accept-data-loss",
                "5m",
                "--approve",
                "both clouds test",
                "--output",
                "json",
            ],
            &[],
            &endpoints,
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.err.contains("reprotecting from us-east-1 first"),
        "{}",
        o.all()
    );
    let new: Vec<String> = fx.runs().difference(&runs).cloned().collect();
    assert_eq!(new.len(), 2, "a reprotection, then the failback: {new:?}");
    let reprotect = (new.iter())
        .find(|r| r.as_str() != o.json()["run_id"])
        .expect("the reprotection's run")
        .clone();
    let step = format!("storefront/reprotect:{}", fx.id("catalogue-sql"));
    let out = crate::fixture::outputs(&fx.show(&reprotect).await, &step);
    assert_eq!(out["dr_replica"], fx.id("catalogue-sql"), "{out:#}");
    assert!(
        out["moves"][0]["operation"].is_string(),
        "designated by the step: {out:#}"
    );

    let clouds = world::clouds().await;
    let sql = |name: String, region: &'static str| {
        let clouds = clouds.clone();
        async move {
            (clouds.cloud_sql)
                .describe_sql(region, PROJECT, &name)
                .await
                .expect("instances.get")
                .expect("exists")
        }
    };
    let home = sql(fx.id("catalogue-sql"), GCP_HOME).await;
    let away = sql(fx.id("catalogue-sql-use4"), GCP_TARGET).await;
    assert_eq!(home.role, DbRole::Primary, "{home:?}");
    assert_eq!(
        away.role,
        DbRole::Replica(fx.id("catalogue-sql")),
        "{away:?}"
    );
    assert!(
        away.dr_replica,
        "the switchover made it the DR replica: {away:?}"
    );
    let db = (clouds.database)
        .describe_instance(HOME, &fx.id("storefront-db"))
        .await
        .expect("DescribeDBInstances")
        .expect("the home primary");
    assert_eq!(db.role, DbRole::Primary, "{db:?}");
    let snap = fx.snapshot().await;
    let record = fx.record(&snap, "storefront", "CNAME");
    assert!(
        record.starts_with(&format!(
            "storefront-usw2.{}",
            fx.zone.trim_end_matches('.')
        )),
        "{record}"
    );
    assert_eq!(
        gcp_calls(
            "POST",
            &format!("/instances/{}/switchover", fx.id("catalogue-sql"))
        )
        .await,
        1
    );
}
