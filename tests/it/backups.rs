//! A plan with no running standby (`plans/archive.toml`, a
//! `[[backup_database]]`) against the world's moto, whose RDS replicates
//! automated backups across regions and copies snapshots there
//! (`localstack/moto_backups.py`): a failover with the home region down
//! restores the replicated backups' newest point in us-east-1 and repoints
//! the record, sending nothing to us-west-2; a snapshot older than the RPO
//! is refused unless the loss is accepted; a region without its subnet
//! group is refused before any restore; a lost answer makes one instance;
//! a process killed mid-restore is finished by a resume; a drill restores,
//! measures and deletes, and a killed one is swept.

use std::process::Stdio;

use crate::fixture::{Fixture, Proxied};
use crate::proxy::{Fault, Gate, Match};
use crate::world::{self, HOME, STANDBY};

/// A fixture whose plans hold the archive plan, renamed for its world, once
/// its backups in us-east-1 can be restored from (moto replicates them
/// after its backup seconds).
async fn archive(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "archive.toml", &fx.suffix);
    let id = fx.id("archive-db");
    let rds = world::sdk().await.rds(STANDBY);
    world::wait_for(
        "archive's backups replicated into us-east-1",
        world::PATIENCE,
        async || {
            let out = rds
                .describe_db_instance_automated_backups()
                .db_instance_identifier(&id)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let statuses: Vec<&str> = (out.db_instance_automated_backups().iter())
                .filter_map(|b| b.status())
                .collect();
            match statuses.contains(&"replicating") {
                true => Ok(()),
                false => Err(format!("{statuses:?}")),
            }
        },
    )
    .await;
    let ledger = fx.id("archive-ledger");
    world::wait_for(
        "archive-ledger's cluster snapshot copied into us-east-1",
        world::PATIENCE,
        async || {
            let out = rds
                .describe_db_cluster_snapshots()
                .db_cluster_identifier(&ledger)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let statuses: Vec<&str> = (out.db_cluster_snapshots().iter())
                .filter_map(|b| b.status())
                .collect();
            match statuses.contains(&"available") {
                true => Ok(()),
                false => Err(format!("{statuses:?}")),
            }
        },
    )
    .await;
    fx
}

/// The instance `id` in `region`, as moto reads it.
async fn instance(region: &str, id: &str) -> Option<drctl::cloud::DbInstance> {
    let db = world::clouds().await.database;
    db.describe_instance(region, id).await.expect("describe")
}

/// The instances of `region` whose name starts with `prefix`.
async fn named(region: &str, prefix: &str) -> Vec<String> {
    let db = world::clouds().await.database;
    let all = db.list_instances(region).await.expect("list");
    (all.into_iter().map(|i| i.id))
        .filter(|i| i.starts_with(prefix))
        .collect()
}

fn failover(plan: &str) -> Vec<&str> {
    let base = [
        "failover", "--plan", plan, "--to", STANDBY, "--output", "json",
    ];
    base.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_fails_over_with_its_home_down_by_restoring_its_replicated_backups() {
    crate::needs_emulators!();
    let fx = archive("bkfo").await;
    let id = fx.id("archive-db");
    let proxied = Proxied::start(false).await;
    for var in ["AWS_ENDPOINT_URL_ROUTE_53", "AWS_ENDPOINT_URL_RDS"] {
        (proxied.proxy_for(var)).inject(Match::Region(HOME), Fault::Reset, usize::MAX);
    }
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    let ran = fx
        .drctl_with(&failover("archive"), &[], &proxied.endpoints())
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let report = ran.json();
    assert_eq!(report["outcome"], "succeeded", "{}", ran.all());
    // Restored in us-east-1 under the plan's name, from the backups there.
    let restored = instance(STANDBY, &id).await.expect("restored");
    assert_eq!(
        (restored.role, restored.status.as_str()),
        (drctl::cloud::DbRole::Primary, "available")
    );
    let from_backups = Match::BodyContains("SourceDBInstanceAutomatedBackupsArn".into());
    assert_eq!(rds.forwarded(from_backups), 1, "{}", rds.log().join("\n"));
    assert_eq!(
        rds.forwarded(Match::Action("RestoreDBInstanceToPointInTime")),
        1
    );
    // The record follows the restored instance.
    let snap = fx.snapshot().await;
    let record = &snap.records[&format!("archive-db.{} CNAME", fx.zone.trim_end_matches('.'))];
    let endpoint = restored.endpoint.expect("an endpoint");
    assert!(
        record.starts_with(endpoint.trim_end_matches('.')),
        "{record} vs {endpoint}"
    );
    // The RPO is measured from the restore point.
    let rpo = report.to_string();
    assert!(rpo.contains("gap from restore point"), "{rpo}");
    // The ledger's cluster: restored from the snapshot copied there, once,
    // with its writer added once it was available, and its record
    // following the new cluster's endpoint.
    let ledger = fx.id("archive-ledger");
    let aurora = world::clouds().await.aurora;
    let cluster = (aurora.describe_cluster(STANDBY, &ledger).await)
        .expect("describe")
        .expect("restored");
    assert_eq!(cluster.status, "available");
    let writer = cluster
        .members
        .first()
        .expect("a writer, named after the run");
    assert!(
        writer.starts_with(&format!("{ledger}-writer-r")),
        "{writer}"
    );
    let writer = instance(STANDBY, writer).await;
    assert!(writer.is_some_and(|w| w.status == "available"));
    for call in ["RestoreDBClusterFromSnapshot", "CreateDBInstance"] {
        assert_eq!(rds.forwarded(Match::Action(call)), 1, "{call}");
    }
    let record = &snap.records[&format!("archive-ledger.{} CNAME", fx.zone.trim_end_matches('.'))];
    let endpoint = cluster.endpoint.expect("an endpoint");
    assert!(
        record.starts_with(endpoint.trim_end_matches('.')),
        "{record} vs {endpoint}"
    );
    // Nothing of the run's path went to us-west-2: only the bounded side
    // read of what it left (its instance and its cluster).
    let home: Vec<String> = (proxied.proxies.iter())
        .flat_map(|p| p.log())
        .filter(|l| l.contains(&format!("[{HOME}]")))
        .collect();
    assert!(
        (home.iter())
            .all(|l| l.contains("DescribeDBInstances") || l.contains("DescribeDBClusters")),
        "{}",
        home.join("\n")
    );
}

/// A plan `name` of tier `tier` whose one resource, `NAME-db`, is the
/// instance `id` in both regions with its backups for a standby, with
/// `extra` keys.
fn one_backup_database(fx: &Fixture, name: &str, tier: &str, id: &str, extra: &str) -> String {
    format!(
        r#"
[plan]
name = "{name}"
tier = "{tier}"
regions = ["us-west-2", "us-east-1"]

[evidence]
destinations = ["s3://drctl-evidence-use1-{sfx}/{name}"]

[[backup_database]]
id = "{name}-db"
regions = {{ us-west-2 = "{id}", us-east-1 = "{id}" }}
{extra}"#,
        sfx = fx.suffix
    )
}

/// A plan of its own whose standby is only a snapshot copied into
/// us-east-1 (encrypted there with `key`, a key of us-east-1, when given),
/// under a tier whose RPO the snapshot is already older than.
async fn snapshot_only(
    fx: &Fixture,
    key: Option<&str>,
) -> (std::path::PathBuf, tempfile::TempDir, String) {
    let id = fx.id("vault-db");
    world::create_primary(HOME, &id).await;
    let home = world::sdk().await.rds(HOME);
    let snap = format!("{id}-nightly");
    let taken = world::tried("snapshot", || {
        home.create_db_snapshot()
            .db_snapshot_identifier(&snap)
            .db_instance_identifier(&id)
            .send()
    })
    .await;
    let snap_arn = (taken.db_snapshot().and_then(|s| s.db_snapshot_arn()))
        .expect("snapshot arn")
        .to_string();
    // Copied seconds later: the copy's own SnapshotCreateTime is then
    // not the data's time, which the RPO must be measured from.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let standby = world::sdk().await.rds(STANDBY);
    world::tried("copy", || {
        standby
            .copy_db_snapshot()
            .source_db_snapshot_identifier(&snap_arn)
            .target_db_snapshot_identifier(&snap)
            .set_kms_key_id(key.map(str::to_string))
            .send()
    })
    .await;
    world::wait_for(
        "the copied snapshot available",
        world::PATIENCE,
        async || {
            let out = (standby
                .describe_db_snapshots()
                .db_snapshot_identifier(&snap)
                .send())
            .await
            .map_err(|e| format!("{e:?}"))?;
            match out.db_snapshots().first().and_then(|s| s.status()) {
                Some("available") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("plans");
    let tiers = r#"
[tiers.archival]
rto = "1h"
rpo = "1s"
approval = "none"
drill_interval = "90d"
evidence_retention = { mode = "governance", days = 365 }
"#;
    std::fs::write(dir.path().join("tiers.toml"), tiers).expect("tiers");
    let plan = one_backup_database(fx, "vault", "archival", &id, "");
    std::fs::write(dir.path().join("vault.toml"), plan).expect("plan");
    (dir.path().to_path_buf(), dir, snap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_snapshot_older_than_the_rpo_is_refused_unless_the_loss_is_accepted() {
    crate::needs_emulators!();
    let fx = Fixture::new("bksnap").await;
    let (plans, _keep, snap) = snapshot_only(&fx, None).await;
    let id = fx.id("vault-db");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let endpoints = world::endpoints_file();
    let refused = fx
        .drctl_in(&plans, &failover("vault"), &[], &endpoints)
        .await;
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let said = refused.all();
    assert!(
        said.contains(&format!(
            "the newest point {id} can be restored to in {STANDBY} is 20"
        )) && said.contains("older than the archival tier's RPO of 1s"),
        "{said}"
    );
    assert_eq!(instance(STANDBY, &id).await, None, "nothing restored");
    let mut accepted = failover("vault");
    accepted.extend(["--accept-data-loss", "1h"]);
    let runs = fx.runs();
    let ran = fx.drctl_in(&plans, &accepted, &[], &endpoints).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let restored = instance(STANDBY, &id).await.expect("restored");
    assert_eq!(restored.role, drctl::cloud::DbRole::Primary);
    let said = ran.all();
    assert!(said.contains("gap from restore point"), "{said}");
    // Restored from the snapshot: the point journaled is when it was taken.
    let standby = world::sdk().await.rds(STANDBY);
    let read = (standby
        .describe_db_snapshots()
        .db_snapshot_identifier(&snap)
        .send())
    .await
    .expect("describe snapshot");
    let copy = read.db_snapshots().first().expect("the copy");
    let taken = (copy.snapshot_database_time())
        .or(copy.original_snapshot_create_time())
        .expect("its data's time")
        .secs();
    let copied = copy.snapshot_create_time().expect("copied").secs();
    assert!(
        copied > taken,
        "the copy's own time is later: {copied} vs {taken}"
    );
    let taken = chrono::DateTime::from_timestamp(taken, 0).expect("a time");
    let journal = fx.journal_text(&fx.new_run(&runs)).await;
    let at = taken
        .format("\"restore_point\":\"%Y-%m-%dT%H:%M:%S")
        .to_string();
    assert!(journal.contains(&at), "{at} in {journal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_without_its_subnet_group_is_not_ready_and_its_failover_restores_nothing() {
    crate::needs_emulators!();
    let fx = archive("bksub").await;
    let path = fx.plans.path().join("archive.toml");
    let text = std::fs::read_to_string(&path).expect("plan");
    let missing = format!("archive-none-{}", fx.suffix);
    std::fs::write(&path, text.replace("archive-private-use1", &missing)).expect("plan");
    let status = fx.drctl(&["status", "--plan", "archive"]).await;
    assert_ne!(status.code, Some(0), "{}", status.all());
    assert!(
        status.out.contains(&format!(
            "DB subnet group {missing} does not exist in {STANDBY}"
        )),
        "{}",
        status.all()
    );
    let ran = fx.drctl(&failover("archive")).await;
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.all().contains(&missing), "{}", ran.all());
    assert_eq!(instance(STANDBY, &fx.id("archive-db")).await, None);
}

/// An encrypted primary's backups replicated under a key of us-east-1;
/// after a failover restored them, reprotect replicates the new primary's
/// backups home under the key the plan names for us-west-2, by alias: the
/// call is sent the key's ARN, read there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprotect_replicates_an_encrypted_primarys_backups_home_under_the_plans_key() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkenc").await;
    let id = fx.id("sealed-db");
    let key_in = async |region: &'static str| {
        let kms = world::sdk().await.kms(region);
        let made = world::tried("key", || kms.create_key().send()).await;
        let key = made.key_metadata().expect("metadata").clone();
        (
            kms,
            key.key_id().to_string(),
            key.arn().expect("arn").to_string(),
        )
    };
    let (kms_home, home_key, home_arn) = key_in(HOME).await;
    let (_, _, standby_arn) = key_in(STANDBY).await;
    let alias = format!("alias/{}", fx.id("sealed"));
    world::tried("alias", || {
        kms_home
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&home_key)
            .send()
    })
    .await;
    let home = world::sdk().await.rds(HOME);
    let made = world::tried("encrypted primary", || {
        home.create_db_instance()
            .db_instance_identifier(&id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .master_username("drctl")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .backup_retention_period(7)
            .storage_encrypted(true)
            .kms_key_id(&home_arn)
            .send()
    })
    .await;
    let arn = made
        .db_instance()
        .and_then(|d| d.db_instance_arn())
        .expect("arn")
        .to_string();
    let standby = world::sdk().await.rds(STANDBY);
    world::tried("replicate", || {
        standby
            .start_db_instance_automated_backups_replication()
            .source_db_instance_arn(&arn)
            .kms_key_id(&standby_arn)
            .send()
    })
    .await;
    let replicating = async |rds: &aws_sdk_rds::Client, of: &str| {
        let out = (rds.describe_db_instance_automated_backups())
            .db_instance_identifier(of)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let live: Vec<(String, Option<String>)> = (out.db_instance_automated_backups().iter())
            .filter(|b| b.status() == Some("replicating"))
            .map(|b| {
                let from = b.db_instance_arn().unwrap_or_default().to_string();
                (from, b.kms_key_id().map(str::to_string))
            })
            .collect();
        Ok::<_, String>(live)
    };
    world::wait_for(
        "replicating into us-east-1",
        world::PATIENCE,
        async || match replicating(&standby, &id).await?.is_empty() {
            false => Ok(()),
            true => Err("not yet".to_string()),
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("plans");
    let keys = format!("kms_keys = {{ us-west-2 = \"{alias}\" }}\n");
    let plan = one_backup_database(&fx, "sealed", "standard", &id, &keys);
    std::fs::write(dir.path().join("sealed.toml"), plan).expect("plan");
    let endpoints = world::endpoints_file();
    let mut over = failover("sealed");
    over.extend(["--accept-data-loss", "1h"]);
    let ran = fx.drctl_in(dir.path(), &over, &[], &endpoints).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let new = instance(STANDBY, &id).await.expect("restored");
    assert!(new.storage_encrypted, "{new:?}");
    let args = ["reprotect", "--plan", "sealed", "--output", "json"];
    let done = fx.drctl_in(dir.path(), &args, &[], &endpoints).await;
    assert_eq!(done.code, Some(0), "{}", done.all());
    world::wait_for(
        "the new primary's backups home",
        world::PATIENCE,
        async || {
            let live = replicating(&home, &id).await?;
            match live.iter().find(|(from, _)| *from == new.arn) {
                Some((_, key)) if key.as_deref() == Some(home_arn.as_str()) => Ok(()),
                other => Err(format!("{other:?} in {live:?}")),
            }
        },
    )
    .await;
}

/// Withdraws (`offered` false) or offers again an instance class for
/// postgres in `region` in the world's moto.
async fn offer_class(region: &str, class: &str, offered: bool) {
    let moto = world::vars()
        .get("AWS_ENDPOINT_URL_RDS")
        .cloned()
        .expect("AWS_ENDPOINT_URL_RDS is not in localstack/endpoints.env: rerun localstack/up");
    let body = serde_json::json!({"region": region, "engine": "postgres", "class": class, "offered": offered});
    let r = reqwest::Client::new()
        .post(format!("{moto}/_drctl/rds/backups/orderable"))
        .json(&body)
        .send()
        .await
        .expect("moto answers");
    assert!(r.status().is_success(), "{}", r.status());
}

/// The target lacks the plan's parameter group, and does not offer the
/// class the plan asks for (for the backups' engine): `status` is not
/// ready, naming each with its region; the failover refuses and restores
/// nothing. Offered again, with the group named right, it is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_without_the_parameter_group_or_the_class_is_not_ready_and_restores_nothing() {
    crate::needs_emulators!();
    let fx = archive("bkneed").await;
    let path = fx.plans.path().join("archive.toml");
    let text = std::fs::read_to_string(&path).expect("plan");
    let missing = format!("archive-gone-{}", fx.suffix);
    // A class no other test asks for: the withdrawal is the world's.
    let class = "db.r7g.large";
    let changed = (text.replace(
        "parameter_groups = { us-west-2 = \"archive-pg16\", us-east-1 = \"archive-pg16\" }",
        &format!(
            "parameter_groups = {{ us-west-2 = \"archive-pg16\", us-east-1 = \"{missing}\" }}"
        ),
    ))
    .replace(
        "instance_class = \"db.t3.micro\"",
        &format!("instance_class = \"{class}\""),
    );
    assert_ne!(changed, text);
    std::fs::write(&path, &changed).expect("plan");
    offer_class(STANDBY, class, false).await;
    let status = fx.drctl(&["status", "--plan", "archive"]).await;
    let ran = fx.drctl(&failover("archive")).await;
    offer_class(STANDBY, class, true).await;
    assert_ne!(status.code, Some(0), "{}", status.all());
    for lack in [
        format!("DB parameter group {missing} does not exist in {STANDBY}"),
        format!("instance class {class} for postgres"),
        format!("is not offered in {STANDBY}"),
    ] {
        assert!(status.out.contains(&lack), "{lack}: {}", status.all());
    }
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.all().contains(&missing), "{}", ran.all());
    assert!(ran.all().contains(class), "{}", ran.all());
    assert_eq!(instance(STANDBY, &fx.id("archive-db")).await, None);
    std::fs::write(&path, text.replace("db.t3.micro", class)).expect("plan");
    let status = fx.drctl(&["status", "--plan", "archive"]).await;
    assert!(!status.out.contains("not offered"), "{}", status.all());
    assert!(!status.out.contains("does not exist"), "{}", status.all());
}

/// The copied snapshot is encrypted with a key of us-east-1 that is
/// pending deletion: nothing can restore it, and `status` says so before
/// an outage does, naming the key; the failover refuses, restoring
/// nothing. The key's deletion cancelled, the same failover restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_under_a_key_pending_deletion_are_not_ready_and_restore_nothing() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkkms").await;
    let kms = world::sdk().await.kms(STANDBY);
    let made = world::tried("key", || kms.create_key().send()).await;
    let key = made.key_metadata().expect("metadata");
    let (arn, key_id) = (key.arn().expect("arn"), key.key_id().to_string());
    let (plans, _keep, _) = snapshot_only(&fx, Some(arn)).await;
    world::tried("schedule deletion", || {
        kms.schedule_key_deletion()
            .key_id(&key_id)
            .pending_window_in_days(7)
            .send()
    })
    .await;
    let endpoints = world::endpoints_file();
    let status = fx
        .drctl_in(&plans, &["status", "--plan", "vault"], &[], &endpoints)
        .await;
    let said = format!("KMS key {arn} is PendingDeletion in {STANDBY}");
    assert!(status.out.contains(&said), "{said}: {}", status.all());
    assert!(
        status.out.contains("cancel-key-deletion"),
        "{}",
        status.all()
    );
    let mut accepted = failover("vault");
    accepted.extend(["--accept-data-loss", "1h"]);
    let ran = fx.drctl_in(&plans, &accepted, &[], &endpoints).await;
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.all().contains("PendingDeletion"), "{}", ran.all());
    assert!(ran.all().contains("cancel-key-deletion"), "{}", ran.all());
    let id = fx.id("vault-db");
    assert_eq!(instance(STANDBY, &id).await, None, "nothing restored");
    world::tried("cancel deletion", || {
        kms.cancel_key_deletion().key_id(&key_id).send()
    })
    .await;
    world::tried("enable", || kms.enable_key().key_id(&key_id).send()).await;
    let again = fx.drctl_in(&plans, &accepted, &[], &endpoints).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(instance(STANDBY, &id).await.is_some(), "restored");
}

/// RDS restored, and its answer never came back: the adapter reads the
/// instance before it would ask again, and the run ends with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_lost_restore_answer_made_one_instance_not_two() {
    crate::needs_emulators!();
    let fx = archive("bklost").await;
    let proxied = Proxied::start(false).await;
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    let restore = Match::Action("RestoreDBInstanceToPointInTime");
    rds.inject(restore.clone(), Fault::DropAfterForward, 1);
    let ran = fx
        .drctl_with(&failover("archive"), &[], &proxied.endpoints())
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(rds.forwarded(restore), 1, "{}", rds.log().join("\n"));
    assert_eq!(
        named(STANDBY, &fx.id("archive-db")).await,
        [fx.id("archive-db")]
    );
}

/// kill -9 with the restore in flight; the request reaches RDS after the
/// process is gone; `runs resume`, a new process, finds the instance the
/// killed one asked for and finishes the run without asking again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_killed_mid_restore_is_finished_by_a_resume_with_one_restore() {
    crate::needs_emulators!();
    let fx = archive("bkkill").await;
    let id = fx.id("archive-db");
    let proxied = Proxied::start(false).await;
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    let restore = Match::Action("RestoreDBInstanceToPointInTime");
    let held = Gate::new();
    rds.inject(restore.clone(), Fault::Hold(held.clone()), 1);
    let runs = fx.runs();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(proxied.endpoints())
        .args(fx.state_args())
        .args(["failover", "--plan", "archive", "--to", STANDBY])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .envs(world::run_key_env())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drctl");
    world::wait_for("the restore at the proxy", world::PATIENCE, async || {
        if rds.requests(restore.clone()) > 0 {
            return Ok(());
        }
        world::running(&mut child, "drctl failover", "its restore").await;
        Err("not yet".to_string())
    })
    .await;
    child.kill().await.expect("kill -9");
    held.open();
    world::wait_for(
        "the killed run's restore at RDS",
        world::PATIENCE,
        async || match instance(STANDBY, &id).await {
            Some(i) => Ok(i),
            None => Err("no instance yet".into()),
        },
    )
    .await;
    let run = fx.new_run(&runs);
    let resumed = fx
        .drctl_with(
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(rds.forwarded(restore), 1, "{}", rds.log().join("\n"));
    let restored = instance(STANDBY, &id).await.expect("restored");
    assert_eq!(restored.status, "available");
    assert!(
        resumed.all().contains("\"already_existed\":true")
            || fx
                .journal_text(&run)
                .await
                .contains("\"already_existed\":true"),
        "the resume found the instance: {}",
        resumed.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_restores_measures_and_deletes_and_a_killed_one_is_swept() {
    crate::needs_emulators!();
    let fx = archive("bkdrill").await;
    let id = fx.id("archive-db");
    let ran = fx
        .drctl(&[
            "drill", "--plan", "archive", "--to", STANDBY, "--output", "json",
        ])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let said = ran.all();
    assert!(
        said.contains("the gap from the point"),
        "the RPO says its point: {said}"
    );
    assert_eq!(
        named(STANDBY, "drill-")
            .await
            .iter()
            .filter(|n| n.contains(&id))
            .count(),
        0
    );
    assert_eq!(
        instance(STANDBY, &id).await,
        None,
        "production's name untouched"
    );
    // The report shows it as the plan's last restore test: what it
    // restored, to which point, and the RTO and RPO it achieved.
    let report = fx
        .drctl(&["report", "--plan", "archive", "--format", "json"])
        .await;
    assert_eq!(report.code, Some(0), "{}", report.all());
    let doc = report.json();
    let plan = &doc["plans"][0];
    assert_eq!(plan["restores_from_backups"], true, "{plan:#}");
    let last = &plan["last_restore_test"];
    assert_eq!(last["verdict"]["verdict"], "PASS", "{last:#}");
    let test = &last["restore_test"];
    let from = test["restored"][0]["from"].as_str().unwrap_or_default();
    assert!(
        from.starts_with("replicated automated backups arn:aws:rds:us-east-1:"),
        "{test:#}"
    );
    assert!(test["restored"][0]["point"].is_string(), "{test:#}");
    let restored = test["restored"].as_array().cloned().unwrap_or_default();
    assert!(
        restored.iter().any(|r| {
            (r["from"].as_str()).is_some_and(|f| f.starts_with("copied cluster snapshot "))
        }),
        "the ledger's restore test too: {test:#}"
    );
    assert_eq!(
        drill_clusters(&fx.id("archive-ledger")).await,
        Vec::<String>::new()
    );
    assert!(test["rpo"]["seconds"].is_number(), "{test:#}");
    assert!(test["rto"]["seconds"].is_number(), "{test:#}");
    let md = fx
        .drctl(&["report", "--plan", "archive", "--format", "md"])
        .await;
    assert!(md.all().contains("- Last restore test: "), "{}", md.all());
    // A drill that crashes once its copy is made leaves it; a sweep from
    // another machine finds it by its tags and removes it.
    let crash = format!("after:archive/drill-copy:{id}");
    let crashed = fx
        .drctl(&[
            "drill",
            "--plan",
            "archive",
            "--to",
            STANDBY,
            "--inject-crash",
            &crash,
        ])
        .await;
    assert_eq!(crashed.code, Some(1), "{}", crashed.all());
    let left: Vec<String> = (named(STANDBY, "drill-").await.into_iter())
        .filter(|n| n.ends_with(&id))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let swept = fx
        .sweep_elsewhere("archive", &world::endpoints_file())
        .await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    world::wait_for("the drill copy deleted", world::PATIENCE, async || {
        let now: Vec<String> = (named(STANDBY, "drill-").await.into_iter())
            .filter(|n| n.ends_with(&id))
            .collect();
        match now.is_empty() {
            true => Ok(()),
            false => Err(format!("{now:?}")),
        }
    })
    .await;
    // The same for the ledger's restored cluster and its writer: a drill
    // killed once the cluster is restored leaves it, a sweep removes both.
    let ledger = fx.id("archive-ledger");
    let crash = format!("after:archive/drill-copy:{ledger}");
    let crashed = fx
        .drctl(&[
            "drill",
            "--plan",
            "archive",
            "--to",
            STANDBY,
            "--inject-crash",
            &crash,
            // The first killed drill's lock: its process is gone.
            "--force-unlock",
        ])
        .await;
    assert_eq!(crashed.code, Some(1), "{}", crashed.all());
    assert_eq!(drill_clusters(&ledger).await.len(), 1);
    let swept = fx
        .sweep_elsewhere("archive", &world::endpoints_file())
        .await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    world::wait_for(
        "the ledger's drill copy deleted",
        world::PATIENCE,
        async || {
            let (clusters, writers) = (
                drill_clusters(&ledger).await,
                named(STANDBY, "drill-")
                    .await
                    .into_iter()
                    .filter(|n| n.contains(&ledger))
                    .count(),
            );
            match (clusters.is_empty(), writers) {
                (true, 0) => Ok(()),
                _ => Err(format!("{clusters:?}, {writers} writers")),
            }
        },
    )
    .await;
}

/// The drill copies of cluster `ledger` in us-east-1.
async fn drill_clusters(ledger: &str) -> Vec<String> {
    let aurora = world::clouds().await.aurora;
    let all = aurora.list_clusters(STANDBY).await.expect("list clusters");
    (all.into_iter().map(|c| c.id))
        .filter(|c| c.starts_with("drill-") && c.ends_with(ledger))
        .collect()
}

/// RDS restored the ledger's cluster and added its writer, and both
/// answers were lost on the way back: the adapter reads before it would
/// ask again, and the run ends with one cluster and one writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_lost_cluster_restore_and_writer_answers_made_one_of_each() {
    crate::needs_emulators!();
    let fx = archive("bkclost").await;
    let ledger = fx.id("archive-ledger");
    let proxied = Proxied::start(false).await;
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    let restore = Match::Action("RestoreDBClusterFromSnapshot");
    let writer = Match::Action("CreateDBInstance");
    rds.inject(restore.clone(), Fault::DropAfterForward, 1);
    rds.inject(writer.clone(), Fault::DropAfterForward, 1);
    let ran = fx
        .drctl_with(&failover("archive"), &[], &proxied.endpoints())
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(rds.forwarded(restore), 1, "{}", rds.log().join("\n"));
    assert_eq!(rds.forwarded(writer), 1, "{}", rds.log().join("\n"));
    let aurora = world::clouds().await.aurora;
    let clusters: Vec<String> = (aurora
        .list_clusters(STANDBY)
        .await
        .expect("list")
        .into_iter())
    .map(|c| c.id)
    .filter(|c| c.contains(&ledger))
    .collect();
    assert_eq!(clusters, std::slice::from_ref(&ledger));
    let writers = named(STANDBY, &format!("{ledger}-writer")).await;
    assert_eq!(writers.len(), 1, "{writers:?}");
}

/// After a failover, reprotect makes the old home a backup standby again:
/// the old primary stops replicating into us-east-1 (its backups there,
/// under the plan's name, must not pass for the new primary's), is renamed
/// out of the way with its data, and the new primary's backups replicate
/// into us-west-2; a failback then restores those, the new primary's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprotect_replicates_the_new_primarys_backups_home_and_a_failback_restores_them() {
    crate::needs_emulators!();
    let fx = archive("bkrep").await;
    let id = fx.id("archive-db");
    let old_arn = instance(HOME, &id).await.expect("the old primary").arn;
    let ran = fx.drctl(&failover("archive")).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let new = instance(STANDBY, &id).await.expect("restored");
    let reprotected = fx
        .drctl(&["reprotect", "--plan", "archive", "--output", "json"])
        .await;
    assert_eq!(reprotected.code, Some(0), "{}", reprotected.all());
    // The old primary: renamed, data kept; the name is free for a restore.
    assert_eq!(instance(HOME, &id).await, None);
    let parked = named(HOME, &format!("{id}-pre-")).await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    // The old ledger cluster too; a snapshot of the new one is copied
    // home, restorable there.
    let ledger = fx.id("archive-ledger");
    let aurora = world::clouds().await.aurora;
    let clusters = aurora.list_clusters(HOME).await.expect("list clusters");
    let ids: Vec<&str> = clusters.iter().map(|c| c.id.as_str()).collect();
    assert!(!ids.contains(&ledger.as_str()), "{ids:?}");
    assert!(
        ids.iter().any(|c| c.starts_with(&format!("{ledger}-pre-"))),
        "{ids:?}"
    );
    let copies = aurora.cluster_copies(HOME, &ledger).await.expect("copies");
    assert!(
        copies
            .iter()
            .any(|c| c.ready && c.source_region.as_deref() == Some(STANDBY)),
        "{copies:?}"
    );
    let backups = |region: &'static str| {
        let id = id.clone();
        async move {
            let rds = world::sdk().await.rds(region);
            let out = (rds.describe_db_instance_automated_backups())
                .db_instance_identifier(&id)
                .send()
                .await
                .expect("describe backups");
            (out.db_instance_automated_backups().iter())
                .filter(|b| b.region().is_some_and(|r| r != region))
                .map(|b| {
                    let arn = b.db_instance_arn().unwrap_or_default().to_string();
                    (arn, b.status().unwrap_or_default().to_string())
                })
                .collect::<Vec<_>>()
        }
    };
    let into_standby = backups(STANDBY).await;
    assert!(
        into_standby
            .iter()
            .all(|(arn, status)| arn != &old_arn || status == "retained"),
        "the old primary no longer replicates into {STANDBY}: {into_standby:?}"
    );
    let home = backups(HOME).await;
    assert!(
        home.iter()
            .any(|(arn, s)| arn == &new.arn && s != "retained"),
        "the new primary's backups replicate home: {home:?}"
    );
    world::wait_for(
        "the new primary's backups restorable at home",
        world::PATIENCE,
        async || {
            let now = backups(HOME).await;
            match now
                .iter()
                .any(|(arn, s)| arn == &new.arn && s == "replicating")
            {
                true => Ok(()),
                false => Err(format!("{now:?}")),
            }
        },
    )
    .await;
    let proxied = Proxied::start(false).await;
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    let back = fx
        .drctl_with(
            &["failback", "--plan", "archive", "--output", "json"],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(back.code, Some(0), "{}", back.all());
    let restored = instance(HOME, &id).await.expect("restored at home");
    assert_eq!(restored.role, drctl::cloud::DbRole::Primary);
    assert_eq!(
        rds.forwarded(Match::Action("RestoreDBInstanceToPointInTime")),
        1,
        "{}",
        rds.log().join("\n")
    );
    // The ledger's cluster came home the same way: from the snapshot of
    // the new cluster that reprotect copied home, never the old cluster's.
    assert_eq!(
        rds.forwarded(Match::Action("RestoreDBClusterFromSnapshot")),
        1,
        "{}",
        rds.log().join("\n")
    );
    let ledger = fx.id("archive-ledger");
    let home = world::sdk().await.rds(HOME);
    let restored = (home.describe_db_clusters())
        .db_cluster_identifier(&ledger)
        .send()
        .await
        .expect("the ledger restored at home");
    let tags = (restored.db_clusters()[0].tag_list().iter())
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect::<Vec<_>>();
    assert!(
        tags.iter().any(|(k, _)| *k == "drctl:restored-by"),
        "{tags:?}"
    );
    // Its writer is the failback's own, not the one that stayed with the
    // old cluster renamed out of the way.
    let aurora = world::clouds().await.aurora;
    let home_ledger = (aurora.describe_cluster(HOME, &ledger).await)
        .expect("describe")
        .expect("restored");
    let writer = home_ledger.members.first().expect("a writer").clone();
    assert!(
        writer.starts_with(&format!("{ledger}-writer-r")),
        "{writer}"
    );
    let writer = instance(HOME, &writer).await.expect("the writer");
    assert_eq!(writer.status, "available");
}

/// The Cloud SQL backup standby (`plans/gcp/archive-gcp.toml`) on the GCP
/// emulator: a primary in us-central1 and a backup of it kept in
/// us-east4, made through the API; the plan renamed for it.
pub(crate) async fn archive_gcp(fx: &Fixture) -> (String, String) {
    let (primary, standby) = (fx.id("archive-sql"), fx.id("archive-sql-use4"));
    let seeded =
        serde_json::json!({"project": "drctl-emu", "name": primary, "region": "us-central1"});
    world::gcp_admin("/emu/instances", seeded).await;
    let backup = serde_json::json!({"instance": primary, "location": "us-east4"});
    world::gcp_admin("/v1/projects/drctl-emu/backups", backup).await;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/archive-gcp.toml");
    let t = std::fs::read_to_string(src).expect("the plan");
    let t = t
        .replace(
            "us-central1 = \"archive-sql\"",
            &format!("us-central1 = \"{primary}\""),
        )
        .replace(
            "us-east4 = \"archive-sql-use4\"",
            &format!("us-east4 = \"{standby}\""),
        )
        .replace(
            "gs://drctl-evidence/",
            &format!("gs://{}/", fx.id("drctl-evidence")),
        );
    std::fs::write(fx.plans.path().join("archive-gcp.toml"), t).expect("write plan");
    world::wait_for("the backup kept in us-east4", world::PATIENCE, async || {
        let listed = reqwest::get(format!(
            "{}/v1/projects/drctl-emu/backups?filter=instance%3D%22{primary}%22",
            world::gcp_endpoint()
        ))
        .await
        .map_err(|e| e.to_string())?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| e.to_string())?;
        match listed["backups"][0]["state"].as_str() {
            Some("SUCCESSFUL") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    (primary, standby)
}

/// The calls the emulator saw on instance `name` itself (its path ends
/// with it, or with it and a method).
/// `drctl COMMAND` of archive-gcp to us-east4, answering JSON.
fn to_use4(command: &str) -> [&str; 7] {
    [
        command,
        "--plan",
        "archive-gcp",
        "--to",
        "us-east4",
        "--output",
        "json",
    ]
}

async fn calls_on(name: &str) -> Vec<String> {
    let calls = world::gcp_calls().await;
    let on = |p: &str| {
        p.ends_with(&format!("/instances/{name}")) || p.contains(&format!("/instances/{name}/"))
    };
    (calls.iter())
        .filter_map(|c| Some((c["method"].as_str()?, c["path"].as_str()?)))
        .filter(|(_, p)| on(p))
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_gcp_fails_over_by_restoring_its_backup_kept_in_us_east4() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkgcp").await;
    let (primary, standby) = archive_gcp(&fx).await;
    let before = calls_on(&primary).await.len();
    let args = [
        "failover",
        "--plan",
        "archive-gcp",
        "--to",
        "us-east4",
        "--output",
        "json",
    ];
    let ran = fx.drctl(&args).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.all().contains("gap from restore point"),
        "{}",
        ran.all()
    );
    // Restored into the plan's name in us-east4, through restoreBackup.
    let sql = world::clouds().await.cloud_sql;
    let made = (sql.describe_sql("us-east4", "drctl-emu", &standby).await)
        .expect("describe")
        .expect("restored");
    assert_eq!(
        (made.region.as_str(), made.state.as_str()),
        ("us-east4", "RUNNABLE")
    );
    assert!(made.labels.contains_key("drctl-restored-by"), "{made:?}");
    assert_eq!(
        calls_on(&standby)
            .await
            .iter()
            .filter(|p| p.ends_with("/restoreBackup"))
            .count(),
        1
    );
    // Nothing was asked of the home primary but the bounded reads beside
    // the run of what it leaves (its state, for the evidence).
    let home = calls_on(&primary).await.split_off(before);
    assert!(
        home.len() <= 2 && home.iter().all(|c| c.starts_with("GET ")),
        "{home:?}"
    );
    // The point the restore marked on it: the backup's, in seconds.
    let mark = made.labels.get("drctl-restore-point").expect("marked");
    let secs: i64 = mark.parse().expect("seconds");
    assert!(
        ran.all().contains(
            &chrono::DateTime::from_timestamp(secs, 0)
                .expect("a time")
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        ),
        "{mark}: {}",
        ran.all()
    );
    // Run again: the instance is the plan's now, and nothing is restored twice.
    // A new run finds the instance an earlier run restored: refused at
    // preflight, naming that run, nothing changed (it cannot tell a
    // restore that serves from one left behind by a failback).
    let again = fx.drctl(&args).await;
    assert_eq!(again.code, Some(1), "{}", again.all());
    assert!(again.all().contains("restored by run"), "{}", again.all());
    assert_eq!(
        calls_on(&standby)
            .await
            .iter()
            .filter(|p| p.ends_with("/restoreBackup"))
            .count(),
        1,
        "{}",
        again.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_gcp_drills_by_restoring_its_backup_into_a_copy_it_deletes() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkgdr").await;
    let (_, standby) = archive_gcp(&fx).await;
    let ran = fx.drctl(&to_use4("drill")).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.all().contains("\"PASS\"") || ran.all().contains("PASS"),
        "{}",
        ran.all()
    );
    let sql = world::clouds().await.cloud_sql;
    let left = (sql
        .list_sql("drctl-emu")
        .await
        .expect("list")
        .instances
        .into_iter())
    .filter(|i| i.name.starts_with("drill-") && i.name.ends_with(&standby))
    .count();
    assert_eq!(left, 0, "the drill copy was deleted");
    assert_eq!(
        sql.describe_sql("us-east4", "drctl-emu", &standby)
            .await
            .expect("read"),
        None
    );
}

/// After a Cloud SQL restore failover, reprotect keeps the new primary's
/// backups in the old home (its backup location) and takes one there at
/// once; the old primary, which Cloud SQL cannot rename, is named as in
/// the way of a failback, not deleted. Once a person has deleted it, the
/// failback restores the new primary's backup kept at home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_gcp_reprotect_keeps_backups_at_home_and_a_failback_restores_them() {
    crate::needs_emulators!();
    let fx = Fixture::new("bkgrep").await;
    let (primary, standby) = archive_gcp(&fx).await;
    let ran = fx.drctl(&to_use4("failover")).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let reprotect = ["reprotect", "--plan", "archive-gcp", "--output", "json"];
    let done = fx.drctl(&reprotect).await;
    assert_eq!(done.code, Some(0), "{}", done.all());
    assert!(
        done.all()
            .contains(&format!("{primary} in us-central1 (the old primary)")),
        "{}",
        done.all()
    );
    let sql = world::clouds().await.cloud_sql;
    let new = (sql.describe_sql("us-east4", "drctl-emu", &standby).await)
        .expect("describe")
        .expect("the new primary");
    assert_eq!(new.backup_location.as_deref(), Some("us-central1"));
    let home = (sql.sql_backups("us-central1", "drctl-emu", &standby).await).expect("list");
    assert_eq!(home.iter().filter(|b| b.ready).count(), 1, "{home:?}");
    assert!(
        (sql.describe_sql("us-central1", "drctl-emu", &primary).await)
            .expect("describe")
            .is_some(),
        "the old primary is kept"
    );
    // Again: nothing more to do, nothing sent.
    let patches = |calls: Vec<String>| calls.iter().filter(|c| c.starts_with("PATCH ")).count();
    assert_eq!(patches(calls_on(&standby).await), 1);
    let again = fx.drctl(&reprotect).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(patches(calls_on(&standby).await), 1, "{}", again.all());
    let home = (sql.sql_backups("us-central1", "drctl-emu", &standby).await).expect("list");
    assert_eq!(home.len(), 1, "no second backup: {home:?}");
    // A person keeps what the old primary holds and deletes it; the
    // failback restores the new primary's backup kept at home.
    let gone = reqwest::Client::new()
        .delete(format!(
            "{}/v1/projects/drctl-emu/instances/{primary}",
            world::gcp_endpoint()
        ))
        .send()
        .await
        .expect("the emulator answers");
    assert!(gone.status().is_success(), "{}", gone.status());
    world::wait_for(
        "the old primary deleted",
        world::PATIENCE,
        async || match sql.describe_sql("us-central1", "drctl-emu", &primary).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let back = fx
        .drctl(&["failback", "--plan", "archive-gcp", "--output", "json"])
        .await;
    assert_eq!(back.code, Some(0), "{}", back.all());
    let restored = (sql.describe_sql("us-central1", "drctl-emu", &primary).await)
        .expect("describe")
        .expect("restored at home");
    assert_eq!(restored.role, drctl::cloud::DbRole::Primary);
    assert!(
        restored.labels.contains_key("drctl-restored-by"),
        "{restored:?}"
    );
}
