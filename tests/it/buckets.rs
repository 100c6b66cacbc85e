//! `[[bucket]]` against the emulators: what the adapters read of a bucket
//! (existence, location, versioning, replication rules), and what preflight
//! and `status` make of it.
//!
//! What the emulators show: LocalStack stores versioning and replication
//! configurations and answers them back (it replicates nothing, and has no
//! replication status per object); fake-gcs-server answers a bucket's
//! metadata with the location it was created with.

use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
    VersioningConfiguration,
};
use drctl::cloud::ObjectUrl;

use crate::adapters::create_s3_bucket;
use crate::fixture::Fixture;
use crate::world::{self, HOME, STANDBY};

async fn version(name: &str) {
    world::sdk()
        .await
        .s3(HOME)
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
}

async fn replicate(from: &str, to: &str, enabled: bool) {
    let rule = ReplicationRule::builder()
        .id("to-standby")
        .priority(1)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Disabled)
                .build(),
        )
        .status(if enabled {
            ReplicationRuleStatus::Enabled
        } else {
            ReplicationRuleStatus::Disabled
        })
        .destination(
            Destination::builder()
                .bucket(format!("arn:aws:s3:::{to}"))
                .build()
                .expect("destination"),
        )
        .build()
        .expect("rule");
    world::sdk()
        .await
        .s3(HOME)
        .put_bucket_replication()
        .bucket(from)
        .replication_configuration(
            ReplicationConfiguration::builder()
                .role("arn:aws:iam::000000000000:role/replication")
                .rules(rule)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("replication");
}

#[tokio::test]
async fn s3_bucket_state_reads_versioning_and_replication_rules() {
    crate::needs_emulators!();
    let objects = world::clouds().await.objects;
    let (src, dst, plain) = (
        world::unique("src"),
        world::unique("dst"),
        world::unique("plain"),
    );
    for b in [&src, &dst, &plain] {
        create_s3_bucket(b).await;
    }
    version(&src).await;
    version(&dst).await;
    replicate(&src, &dst, true).await;

    let url = |b: &str| ObjectUrl::parse(&format!("s3://{b}")).unwrap();
    let s = objects.bucket_state(STANDBY, &url(&src)).await.unwrap();
    assert!(s.exists);
    assert_eq!(s.location.as_deref(), Some(HOME), "found through {STANDBY}");
    assert_eq!(s.versioning, Some(true));
    let rules = s.replication.unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(rules[0].enabled && rules[0].targets(&dst), "{rules:?}");

    let p = objects.bucket_state(STANDBY, &url(&plain)).await.unwrap();
    assert_eq!((p.exists, p.versioning), (true, Some(false)));
    assert_eq!(p.replication, Some(vec![]), "no configuration is no rules");

    let missing = objects
        .bucket_state(STANDBY, &url(&world::unique("nobucket")))
        .await
        .unwrap();
    assert!(!missing.exists);
}

#[tokio::test]
async fn gcs_bucket_state_reads_the_location() {
    crate::needs_emulators!();
    let name = world::unique("gloc");
    world::create_gcs_bucket(&name).await;
    let s = world::clouds()
        .await
        .objects
        .bucket_state(STANDBY, &ObjectUrl::parse(&format!("gs://{name}")).unwrap())
        .await
        .unwrap();
    assert!(s.exists);
    assert!(s.location.is_some(), "{s:?}");
}

/// Appends a `[[bucket]]` to the fixture's payments plan.
/// Its eu-west-1 bucket does not exist: only that standby is not ready.
fn add_bucket(fx: &Fixture, home: &str, standby: &str) {
    let path = fx.plans.path().join("payments.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let third = fx.id("receipts-euw1");
    text.push_str(&format!(
        "\n[[bucket]]\nid = \"receipts\"\nregions = {{ us-west-2 = \"s3://{home}\", us-east-1 = \"s3://{standby}\", eu-west-1 = \"s3://{third}\" }}\n"
    ));
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_replication_into_the_standby_bucket_and_a_failover_reads_it_back() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkt").await;
    let (src, dst) = (fx.id("receipts-usw2"), fx.id("receipts-use1"));
    create_s3_bucket(&src).await;
    create_s3_bucket(&dst).await;
    version(&src).await;
    version(&dst).await;
    replicate(&src, &dst, false).await;
    add_bucket(&fx, &src, &dst);

    // A disabled rule: status says so and the standby is not ready.
    let ran = fx
        .drctl(&["status", "--plan", "payments", "--output", "json"])
        .await;
    let report = ran.json();
    let standby = report["plans"][0]["regions"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["region"] == STANDBY).cloned())
        .unwrap_or_default();
    let text = standby["checks"].to_string();
    assert!(
        text.contains("versioning on") && text.contains("disabled"),
        "{standby:#}"
    );
    assert_eq!(standby["ready"], false, "{standby:#}");

    // Enabled: ready; and a failover reads the bucket back after the switch.
    replicate(&src, &dst, true).await;
    let ran = fx
        .drctl(&["status", "--plan", "payments", "--output", "json"])
        .await;
    assert!(ran.out.contains("rule to-standby enabled"), "{}", ran.out);
    let ran = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.out.contains("verify-bucket:receipts"), "{}", ran.out);
}

/// Maintenance AWS will apply to the standby replica is a note under it
/// in `drctl status` (text and JSON), and the standby stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_the_maintenance_pending_on_the_standby_replica() {
    crate::needs_emulators!();
    let fx = Fixture::new("maint").await;
    let replica = fx.id("payments-db-use1");
    crate::adapters::arm_maintenance(
        STANDBY,
        "db",
        &replica,
        serde_json::json!([{"Action": "system-update", "AutoAppliedAfterDate": "2026-12-01T00:00:00Z"}]),
    )
    .await;
    let text = fx.drctl(&["status", "--plan", "payments"]).await;
    let json = fx
        .drctl(&["status", "--plan", "payments", "--output", "json"])
        .await;
    crate::adapters::arm_maintenance(STANDBY, "db", &replica, serde_json::json!([])).await;
    let note = "note: pending maintenance `system-update` (auto-applied after 2026-12-01)";
    assert!(text.out.contains(note), "{}", text.all());
    let standby = (json.json()["plans"][0]["regions"].as_array().cloned())
        .and_then(|r| r.into_iter().find(|r| r["region"] == STANDBY))
        .unwrap_or_default();
    let notes = standby["databases"][0]["notes"].to_string();
    assert!(notes.contains("`system-update`"), "{standby:#}");
}

/// Issue 40: on an Aurora secondary, maintenance is pending per cluster
/// and per instance, and the cluster filter lists only the former: the
/// secondary's instance (read from the cluster's `DBClusterMembers`) is
/// asked too, and `status` names the instance.
#[tokio::test(flavor = "multi_thread")]
async fn status_says_the_maintenance_pending_on_an_aurora_secondarys_instance() {
    crate::needs_emulators!();
    let fx = Fixture::new("maintau").await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "orders.toml", &fx.suffix);
    let (cluster, instance) = (fx.id("orders-use1"), fx.id("orders-use1-a"));
    world::sdk()
        .await
        .rds(STANDBY)
        .create_db_instance()
        .db_instance_identifier(&instance)
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("the secondary's instance");
    let upgrade = serde_json::json!([{"Action": "system-update"}]);
    crate::adapters::arm_maintenance(STANDBY, "db", &instance, upgrade).await;
    let json = fx
        .drctl(&["status", "--plan", "orders", "--output", "json"])
        .await;
    crate::adapters::arm_maintenance(STANDBY, "db", &instance, serde_json::json!([])).await;
    let standby = (json.json()["plans"][0]["regions"].as_array().cloned())
        .and_then(|r| r.into_iter().find(|r| r["region"] == STANDBY))
        .unwrap_or_default();
    let notes = standby["databases"][0]["notes"].to_string();
    let said = format!("instance {instance}: pending maintenance `system-update`");
    assert!(notes.contains(&said), "{standby:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_bucket_stops_the_failover_at_preflight() {
    crate::needs_emulators!();
    let fx = Fixture::new("bktno").await;
    let src = fx.id("receipts-usw2");
    create_s3_bucket(&src).await;
    add_bucket(&fx, &src, &fx.id("receipts-nowhere"));
    let before = fx.snapshot().await;
    let ran = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.out.contains("receipts-nowhere") && ran.out.contains("does not exist"),
        "{}",
        ran.out
    );
    assert_eq!(fx.snapshot().await, before, "nothing changed");
}

/// Issue 75: payments switches by records (`upsert`) on a Route 53 zone
/// whose `GetHostedZone` answer carries no accelerated recovery (the
/// emulator's, as a zone that never had it): `status` says, beside each
/// record, that its switch needs us-east-1's control plane, and how to
/// lift that; the plan stays ready (the record points where it should).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_a_switch_by_records_needs_us_east_1_without_accelerated_recovery() {
    crate::needs_emulators!();
    let fx = Fixture::new("arec").await;
    let text = fx.drctl(&["status", "--plan", "payments"]).await;
    assert!(
        text.out.contains("    switch: zone ")
            && text.out.contains("not reported by GetHostedZone")
            && text.out.contains("--enable-accelerated-recovery"),
        "{}",
        text.all()
    );
    let json = fx
        .drctl(&["status", "--plan", "payments", "--output", "json"])
        .await;
    let plan = &json.json()["plans"][0];
    let dns = plan["dns"].as_array().cloned().unwrap_or_default();
    assert!(!dns.is_empty(), "{plan:#}");
    for d in &dns {
        assert!(
            d["switch_depends"].to_string().contains("us-east-1"),
            "{d:#}"
        );
    }
}
