use super::*;
use crate::cloud::RestoreNeed;
use crate::cloud::fake::FakeCloud;
use crate::plan::kinds::backups::needs;
use chrono::DateTime;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn restorable(id: &str, (earliest, latest): (&str, &str), ready: bool) -> Restorable {
    Restorable {
        id: id.into(),
        source: "archive-db".into(),
        source_arn: None,
        source_region: Some("us-west-2".into()),
        status: if ready { "available" } else { "pending" }.into(),
        ready,
        earliest: Some(at(earliest)),
        latest: Some(at(latest)),
        kms_key_id: None,
        progress: (!ready).then_some(40),
        engine: Some("postgres".into()),
        engine_version: Some("16.3".into()),
    }
}

const BACKUPS: &str = "arn:aws:rds:us-east-1:123456789012:auto-backup:ab-x";

fn archive() -> Plan {
    (crate::plan::reference().into_iter())
        .find(|p| p.name() == "archive")
        .expect("the reference archive plan")
}

fn spec(plan: &Plan) -> &BackupDatabaseSpec {
    &plan.spec.backup_database[0]
}

#[test]
fn the_newest_ready_copy_is_picked_and_a_copy_under_way_only_when_none_is_ready() {
    let backups = restorable(
        BACKUPS,
        ("2026-11-23T00:00:00Z", "2026-11-30T02:55:00Z"),
        true,
    );
    let nightly = restorable(
        "archive-db-nightly",
        ("2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z"),
        true,
    );
    let copying = restorable(
        "archive-db-copying",
        ("2026-11-30T03:00:00Z", "2026-11-30T03:00:00Z"),
        false,
    );
    let all = vec![nightly.clone(), copying.clone(), backups.clone()];
    assert_eq!(pick(all).map(|r| r.id), Some(BACKUPS.to_string()));
    assert_eq!(
        pick(vec![copying.clone(), nightly.clone()]).map(|r| r.id),
        Some(nightly.id.clone())
    );
    assert_eq!(pick(vec![copying.clone()]).map(|r| r.id), Some(copying.id));
    assert_eq!(pick(Vec::new()), None);
}

/// A restore is asked of the copy that holds the point decided: the
/// backups for any time in their window (they restore that very point),
/// the snapshot taken at it otherwise; a point nothing holds is none.
#[test]
fn a_point_is_restored_from_the_copy_that_holds_it() {
    let backups = restorable(
        BACKUPS,
        ("2026-11-23T00:00:00Z", "2026-11-30T02:55:00Z"),
        true,
    );
    let older = restorable(
        "archive-db-2026-11-20",
        ("2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z"),
        true,
    );
    let all = [older.clone(), backups.clone()];
    let point = |t: &str, ask| Point {
        ask,
        known: Some(at(t)),
        basis: "test",
    };
    let latest = point("2026-11-30T02:55:00Z", RestorePoint::Latest);
    assert_eq!(choose(&all, latest).map(|r| &r.id), Some(&backups.id));
    let inside = point(
        "2026-11-25T00:00:00Z",
        RestorePoint::At(at("2026-11-25T00:00:00Z")),
    );
    assert_eq!(choose(&all, inside).map(|r| &r.id), Some(&backups.id));
    let snap = point(
        "2026-11-20T00:00:00Z",
        RestorePoint::At(at("2026-11-20T00:00:00Z")),
    );
    assert_eq!(choose(&all, snap).map(|r| &r.id), Some(&older.id));
    let nothing = point(
        "2026-11-21T00:00:00Z",
        RestorePoint::At(at("2026-11-21T00:00:00Z")),
    );
    assert_eq!(choose(&all, nothing), None);
    let unknown = Point {
        ask: RestorePoint::Latest,
        known: None,
        basis: "test",
    };
    assert_eq!(choose(&all, unknown).map(|r| &r.id), Some(&backups.id));
}

/// The standby a failover would restore from is what `status` shows in
/// the region: the backups' newest point as the copy's "lag" (one
/// datapoint, stamped with the point), read there alone.
#[tokio::test]
async fn the_standby_is_read_in_its_region_as_its_newest_restorable_point() {
    let plan = archive();
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, &plan);
    let clouds = f.clouds();
    let db = spec(&plan);
    let seen = db.describe(&clouds, "us-east-1").await.unwrap().unwrap();
    assert_eq!(seen.role, DbRole::Replica("archive-db".into()));
    assert_eq!(seen.status, "available");
    assert!(
        seen.notes[0].starts_with("replicated automated backups of archive-db from us-west-2"),
        "{:?}",
        seen.notes
    );
    let lag = db
        .lag(&clouds, "us-east-1", Duration::from_secs(900))
        .await
        .unwrap();
    let (age, point) = lag.latest.expect("the point");
    assert_eq!((lag.datapoints, lag.max), (1, Some(age)));
    assert!(age >= Duration::from_secs(300) && age < Duration::from_secs(330));
    let key = ("us-east-1".to_string(), "archive-db".to_string());
    let newest = (f.state().restorables[&key].iter())
        .filter_map(|r| r.latest)
        .max();
    assert_eq!(Some(point), newest);
    // The home region's instance is the primary; nothing asked us-west-2
    // of the standby's backups.
    let home = db.describe(&clouds, "us-west-2").await.unwrap().unwrap();
    assert_eq!(home.role, DbRole::Primary);
}

/// With nothing restorable in the region, the standby says so, and its
/// "lag" is an error naming the region, never a zero.
#[tokio::test]
async fn no_backups_in_the_region_is_said_and_its_point_unknown() {
    let plan = archive();
    let f = FakeCloud::new();
    f.add_primary("us-west-2", "archive-db");
    let clouds = f.clouds();
    let db = spec(&plan);
    let seen = db.describe(&clouds, "us-east-1").await.unwrap().unwrap();
    assert_eq!(seen.status, "no-backups");
    assert_eq!(
        seen.notes,
        ["no replicated automated backups or copied snapshots of archive-db in us-east-1"]
    );
    let e = (db.lag(&clouds, "us-east-1", Duration::from_secs(900)).await).unwrap_err();
    assert_eq!(e.kind, crate::cloud::ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("in us-east-1"), "{e}");
}

/// What the region lacks is named, each with its fix, before any write:
/// the plan's subnet group, and the name a restore takes held by an
/// instance no restore of drctl's made.
#[tokio::test]
async fn a_missing_subnet_group_and_a_name_taken_are_each_named() {
    let plan = archive();
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, &plan);
    f.state().lacking.insert(
        (
            "us-east-1".into(),
            RestoreNeed::SubnetGroup("archive-private-use1".into()),
        ),
        "does not exist".into(),
    );
    f.add_primary("us-east-1", "archive-db");
    let clouds = f.clouds();
    let place = spec(&plan).placement("us-east-1");
    assert_eq!(place.from, ["archive-db"]);
    let read = (BackupRestoring.source(&clouds, "us-east-1", "archive-db", &place))
        .await
        .unwrap()
        .unwrap();
    let why: Vec<&str> = read.lacks.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        why,
        [
            "DB subnet group archive-private-use1 does not exist in us-east-1",
            "instance archive-db already exists in us-east-1 (available; no restore of drctl's made it)",
        ]
    );
    assert!(f.state().writes.is_empty());
    // An instance this run's restore made is the restore's (a resume);
    // one another run restored (before a failback) is in the way.
    let key = ("us-east-1".to_string(), "archive-db".to_string());
    let tag = (RESTORED_BY_TAG.to_string(), "run-1".to_string());
    f.state()
        .databases
        .get_mut(&key)
        .unwrap()
        .tags
        .extend([tag]);
    f.state().lacking.clear();
    let by = |run: &str| {
        let mut p = place.clone();
        p.place
            .tags
            .extend([(RESTORED_BY_TAG.to_string(), run.to_string())]);
        p
    };
    let read = (BackupRestoring.source(&clouds, "us-east-1", "archive-db", &by("run-1")))
        .await
        .unwrap()
        .unwrap();
    assert!(read.lacks.is_empty(), "{:?}", read.lacks);
    let read = (BackupRestoring.source(&clouds, "us-east-1", "archive-db", &by("run-2")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.lacks[0].0,
        "instance archive-db already exists in us-east-1 (available; restored by run run-1, not this one)"
    );
}

#[test]
fn a_plan_places_a_restore_only_where_it_has_an_instance() {
    let text = r#"
[plan]
name = "archive"
tier = "standard"
regions = ["us-west-2", "us-east-1"]

[[backup_database]]
id = "archive-db"
regions = { us-west-2 = "archive-db", us-east-1 = "9archive" }
subnet_groups = { eu-west-1 = "archive-private" }
parameter_groups = { us-east-1 = "tuned/16" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = crate::plan::load(&[path]);
    let said: Vec<String> = (loaded.diagnostics.iter())
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        said,
        [
            "9:51 backup_database `archive-db` names `9archive` in us-east-1, not an RDS instance identifier",
            "10:19 backup_database `archive-db` places a restore in eu-west-1, where it has no instance",
            "11:34 `tuned/16` does not name a DB parameter group",
        ],
        "{said:#?}"
    );
}

/// What a restore asks of the region (pure): the groups the plan names,
/// the class only when the data's engine is known, the key only when the
/// data is encrypted.
#[test]
fn a_restore_needs_the_plans_groups_its_class_for_the_engine_and_the_datas_key() {
    let plan = archive();
    let place = spec(&plan).placement("us-east-1").place;
    let mut data = restorable(
        BACKUPS,
        ("2026-11-23T00:00:00Z", "2026-11-30T02:55:00Z"),
        true,
    );
    let class = RestoreNeed::InstanceClass {
        class: "db.t3.micro".into(),
        engine: "postgres".into(),
        version: Some("16.3".into()),
    };
    assert_eq!(
        needs(&place, Some(&data)),
        [
            RestoreNeed::SubnetGroup("archive-private-use1".into()),
            RestoreNeed::ParameterGroup("archive-pg16".into()),
            class.clone(),
        ]
    );
    data.engine = None;
    data.kms_key_id = Some("arn:aws:kms:us-east-1:1:key/k".into());
    let said = needs(&place, Some(&data));
    assert!(!said.contains(&class), "{said:?}");
    assert_eq!(
        said.last(),
        Some(&RestoreNeed::KmsKey("arn:aws:kms:us-east-1:1:key/k".into()))
    );
    assert_eq!(needs(&ReplicaPlacement::default(), None), []);
}

/// Each thing the target lacks for the restore is named with its fix, in
/// the region, before any write: a parameter group gone, the class not
/// offered for the backups' engine, the backups' key pending deletion.
#[tokio::test]
async fn a_parameter_group_gone_a_class_not_offered_and_a_key_pending_deletion_are_each_named() {
    let plan = archive();
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, &plan);
    let key = "arn:aws:kms:us-east-1:123456789012:key/archive";
    for copies in f.state().restorables.values_mut() {
        for r in copies {
            r.kms_key_id = Some(key.into());
        }
    }
    let lack = [
        (
            RestoreNeed::ParameterGroup("archive-pg16".into()),
            "does not exist",
        ),
        (
            RestoreNeed::InstanceClass {
                class: "db.t3.micro".into(),
                engine: "postgres".into(),
                version: Some("16.3".into()),
            },
            "is not offered",
        ),
        (RestoreNeed::KmsKey(key.into()), "is PendingDeletion"),
    ];
    for (need, why) in lack {
        f.state()
            .lacking
            .insert(("us-east-1".into(), need), why.into());
    }
    let clouds = f.clouds();
    let place = spec(&plan).placement("us-east-1");
    let read = (BackupRestoring.source(&clouds, "us-east-1", "archive-db", &place))
        .await
        .unwrap()
        .unwrap();
    let why: Vec<&str> = read.lacks.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        why,
        [
            "DB parameter group archive-pg16 does not exist in us-east-1",
            "instance class db.t3.micro for postgres 16.3 is not offered in us-east-1",
            "KMS key arn:aws:kms:us-east-1:123456789012:key/archive is PendingDeletion in us-east-1",
        ]
    );
    let fixes: Vec<&str> = read.lacks.iter().map(|(_, h)| h.as_str()).collect();
    assert!(
        fixes[0].contains("create-db-parameter-group --region us-east-1"),
        "{fixes:?}"
    );
    assert!(
        fixes[1].contains(
            "describe-orderable-db-instance-options --region us-east-1 --engine postgres"
        ),
        "{fixes:?}"
    );
    assert!(
        fixes[2].contains("cancel-key-deletion --region us-east-1"),
        "{fixes:?}"
    );
    assert!(f.state().writes.is_empty());
}

/// Readiness judges the newest copy's key; a restore to an older time may
/// pick a copy under another key: the restore reads that copy's key again
/// and refuses before it asks, naming the key and the copy.
#[tokio::test]
async fn a_restore_of_an_older_copy_under_a_key_pending_deletion_is_refused_before_any_write() {
    let plan = archive();
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, &plan);
    let key = ("us-east-1".to_string(), "archive-db".to_string());
    let bad = "arn:aws:kms:us-east-1:123456789012:key/old";
    let older = {
        let mut s = f.state();
        let copies = s.restorables.get_mut(&key).expect("seeded");
        // Snapshots only: the replicated backups would hold any time.
        copies.retain(|r| !r.id.starts_with("arn:"));
        let old = copies.iter_mut().next().expect("the nightly snapshot");
        old.kms_key_id = Some(bad.into());
        old.latest.expect("taken")
    };
    let at = crate::cloud::fake::BackupAt {
        region: "us-east-1",
        source: "archive-db",
        from: "us-west-2",
    };
    f.add_restorable(at, Some("archive-db-hourly"), Utc::now());
    let need = RestoreNeed::KmsKey(bad.into());
    let pending = ("us-east-1".to_string(), need);
    f.state()
        .lacking
        .insert(pending, "is PendingDeletion".into());
    let clouds = f.clouds();
    let place = spec(&plan).placement("us-east-1");
    let ready = (BackupRestoring.source(&clouds, "us-east-1", "archive-db", &place))
        .await
        .unwrap()
        .unwrap();
    assert!(
        ready.lacks.is_empty(),
        "the newest is fine: {:?}",
        ready.lacks
    );
    let point = Point {
        ask: RestorePoint::At(older),
        known: Some(older),
        basis: "asked",
    };
    let e = restore(&clouds, "us-east-1", "archive-db", point, &place)
        .await
        .unwrap_err();
    let said = e.to_string();
    assert!(
        said.contains(&format!("KMS key {bad} is PendingDeletion")),
        "{said}"
    );
    assert!(said.contains("snapshot archive-db-nightly"), "{said}");
    assert!(said.contains("cancel-key-deletion"), "{said}");
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
}
