//! The real cloud adapters against the emulators: every method of every
//! adapter, with unique resource names, plus error behaviour (classification,
//! messages, bounded retries) against closed ports and a tiny fault server.
//!
//! Fixtures (zones, primaries, groups, buckets) are created with raw SDK
//! clients configured like the adapters ([`world::sdk`]), so each test checks
//! the adapter against state it did not make itself.

use crate::world::{Asg, AsgCalls};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;
use chrono::Utc;
use drctl::cloud::retry::RetryPolicy;
use drctl::cloud::{
    Capacity, CloudSettings, Clouds, DbRole, DnsChange, DnsRecord, ErrorKind, HostedZone,
    ObjectUrl, PutMode, PutOutcome, ReplicaPlacement, RestorePoint,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{self, FaultProxy, Match};
use crate::world::{self, HOME, STANDBY};

// ---------------------------------------------------------------- fixtures

fn record(name: &str, rtype: &str, value: &str, set: Option<(&str, i64)>) -> DnsRecord {
    DnsRecord {
        name: name.to_string(),
        rtype: rtype.to_string(),
        ttl: Some(60),
        values: vec![value.to_string()],
        set_identifier: set.map(|s| s.0.to_string()),
        weight: set.map(|s| s.1),
        routing: None,
    }
}

async fn create_group(region: &str, name: &str, min: i32, desired: i32, max: i32) {
    let asg = world::sdk().await.autoscaling(region);
    let lc = format!("{name}-lc");
    asg.create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id("ami-1e749f67")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("create launch configuration");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(&lc)
        .min_size(min)
        .desired_capacity(desired)
        .max_size(max)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .expect("create auto scaling group");
}

pub(crate) async fn create_s3_bucket(name: &str) {
    world::sdk()
        .await
        .s3(HOME)
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(HOME))
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
}

/// The real adapters with the endpoint in `slot` behind a [`FaultProxy`]
/// (which counts the requests, and can break some).
pub(crate) async fn proxied(
    slot: fn(&mut CloudSettings) -> &mut Option<String>,
) -> (FaultProxy, Clouds) {
    let mut settings = world::settings();
    let endpoint = slot(&mut settings);
    let upstream = endpoint.clone().expect("the emulator endpoint is set");
    let proxy = FaultProxy::start(&upstream).await;
    *endpoint = Some(proxy.url());
    let clouds = drctl::cloud::connect(&settings)
        .await
        .expect("adapters build");
    (proxy, clouds)
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Settings whose every endpoint is `url`, with a tiny retry policy.
fn settings_at(url: &str, max_retries: usize) -> CloudSettings {
    CloudSettings {
        route53_endpoint: Some(url.into()),
        s3_endpoint: Some(url.into()),
        rds_endpoint: Some(url.into()),
        autoscaling_endpoint: Some(url.into()),
        cloudwatch_endpoint: Some(url.into()),
        sts_endpoint: Some(url.into()),
        sns_endpoint: Some(url.into()),
        events_endpoint: Some(url.into()),
        gcs_endpoint: Some(url.into()),
        retry: RetryPolicy {
            max_retries,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        ..world::settings()
    }
}

/// What the fault server does with each request.
#[derive(Clone, Copy)]
enum Fault {
    /// Close the connection without answering.
    Drop,
    /// Answer with this status and an AWS query-protocol error of this code.
    Status(u16, &'static str),
}

/// Decides the answer to one raw HTTP request: `None` drops the connection.
pub(crate) type Handler = Arc<dyn Fn(&str) -> Option<(u16, String)> + Send + Sync>;

/// A one-purpose HTTP server on loopback: counts requests, answers each
/// with `fault`. Returns its URL and the request counter.
async fn fault_server(fault: Fault) -> (String, Arc<AtomicUsize>) {
    fake_server(Arc::new(move |_| match fault {
        Fault::Drop => None,
        Fault::Status(status, code) => Some((
            status,
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>injected {code}</Message></Error>\
                 <RequestId>fault</RequestId></ErrorResponse>"
            ),
        )),
    }))
    .await
}

/// A loopback HTTP server answering every request through `handler` (XML
/// bodies), counting requests.
pub(crate) async fn fake_server(handler: Handler) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                // Read the head and the body (Content-Length), then answer.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let request = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break text;
                        }
                    }
                };
                counter.fetch_add(1, Ordering::SeqCst);
                if let Some((status, body)) = handler(&request) {
                    let resp = format!(
                        "HTTP/1.1 {status} Fake\r\ncontent-type: text/xml\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, count)
}

// ---------------------------------------------------------------- Route 53

#[tokio::test]
async fn route53_finds_zones_by_exact_name() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let name = format!("{}.example.com", world::unique("z"));
    let zone = world::create_zone(&name).await;

    let found = clouds
        .dns
        .find_zone(&name)
        .await
        .unwrap()
        .expect("zone found");
    assert_eq!(found, zone);
    let dotted = clouds
        .dns
        .find_zone(&format!("{}.", name.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(dotted, Some(zone), "trailing dot and case do not matter");

    // A name that sorts right after ours must not match it.
    let missing = format!("{}.example.com", world::unique("missing"));
    assert_eq!(clouds.dns.find_zone(&missing).await.unwrap(), None);
    assert_eq!(
        clouds.dns.find_zone(&format!("a{name}")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn route53_reads_plain_weighted_and_wildcard_records() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let name = format!("{}.example.com", world::unique("r"));
    let zone = world::create_zone(&name).await;
    let set = |n: &str, v: &str, id: Option<(&str, i64)>| {
        let mut b = ResourceRecordSet::builder()
            .name(n)
            .r#type(RrType::Cname)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(v).build().unwrap());
        if let Some((id, w)) = id {
            b = b.set_identifier(id).weight(w);
        }
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(b.build().unwrap())
            .build()
            .unwrap()
    };
    world::sdk()
        .await
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .change_batch(
            ChangeBatch::builder()
                .changes(set(&format!("api.{name}"), "db-west.example.net", None))
                .changes(set(
                    &format!("app.{name}"),
                    "west.example.net",
                    Some(("west", 100)),
                ))
                .changes(set(
                    &format!("app.{name}"),
                    "east.example.net",
                    Some(("east", 0)),
                ))
                .changes(set(&format!("*.{name}"), "catch.example.net", None))
                // A neighbour that sorts right after `api`: must not leak in.
                .changes(set(&format!("api2.{name}"), "other.example.net", None))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("seed records");

    let api = clouds
        .dns
        .read_records(&zone, &format!("API.{name}"), "CNAME")
        .await
        .unwrap();
    assert_eq!(
        api,
        vec![record(
            &format!("api.{name}."),
            "CNAME",
            "db-west.example.net",
            None
        )]
    );

    let mut app = clouds
        .dns
        .read_records(&zone, &format!("app.{name}."), "CNAME")
        .await
        .unwrap();
    app.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    assert_eq!(
        app,
        vec![
            record(
                &format!("app.{name}."),
                "CNAME",
                "east.example.net",
                Some(("east", 0))
            ),
            record(
                &format!("app.{name}."),
                "CNAME",
                "west.example.net",
                Some(("west", 100))
            ),
        ]
    );

    let wild = clouds
        .dns
        .read_records(&zone, &format!("*.{name}"), "CNAME")
        .await
        .unwrap();
    assert_eq!(wild.len(), 1, "wildcard (\\052) record: {wild:?}");
    assert_eq!(wild[0].name, format!("*.{name}."));

    let none = clouds
        .dns
        .read_records(&zone, &format!("nothing.{name}"), "CNAME")
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let wrong_type = clouds
        .dns
        .read_records(&zone, &format!("api.{name}"), "A")
        .await
        .unwrap();
    assert!(wrong_type.is_empty(), "{wrong_type:?}");
}

#[tokio::test]
async fn route53_applies_one_batch_and_reports_its_status() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let name = format!("{}.example.com", world::unique("c"));
    let zone = world::create_zone(&name).await;
    let api = record(
        &format!("api.{name}."),
        "CNAME",
        "db-east.example.net",
        None,
    );
    let west = record(
        &format!("app.{name}."),
        "A",
        "192.0.2.10",
        Some(("west", 0)),
    );
    let east = record(
        &format!("app.{name}."),
        "A",
        "192.0.2.20",
        Some(("east", 100)),
    );
    let changes = vec![
        DnsChange::Upsert(api.clone()),
        DnsChange::Upsert(west.clone()),
        DnsChange::Upsert(east.clone()),
    ];
    let info = clouds
        .dns
        .apply_changes(&zone, &changes, "drctl test failover")
        .await
        .unwrap();
    assert!(!info.id.starts_with("/change/"), "{}", info.id);

    assert_eq!(
        clouds
            .dns
            .read_records(&zone, &api.name, "CNAME")
            .await
            .unwrap(),
        vec![api.clone()]
    );
    let mut app = clouds
        .dns
        .read_records(&zone, &west.name, "A")
        .await
        .unwrap();
    app.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    assert_eq!(app, vec![east.clone(), west.clone()]);

    let status = clouds.dns.change_status(&info.id).await.unwrap();
    assert_eq!(status.id, info.id);
    assert!(status.in_sync, "LocalStack is INSYNC at once");
    let prefixed = clouds
        .dns
        .change_status(&format!("/change/{}", info.id))
        .await
        .unwrap();
    assert_eq!(prefixed.id, info.id);

    // UPSERT again (weights swapped) and DELETE in one batch.
    let west2 = DnsRecord {
        weight: Some(100),
        ..west.clone()
    };
    let east2 = DnsRecord {
        weight: Some(0),
        ..east.clone()
    };
    clouds
        .dns
        .apply_changes(
            &zone,
            &[
                DnsChange::Upsert(west2.clone()),
                DnsChange::Upsert(east2.clone()),
                DnsChange::Delete(api.clone()),
            ],
            "",
        )
        .await
        .unwrap();
    let mut app = clouds
        .dns
        .read_records(&zone, &west.name, "A")
        .await
        .unwrap();
    app.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    assert_eq!(app, vec![east2, west2]);
    assert!(
        clouds
            .dns
            .read_records(&zone, &api.name, "CNAME")
            .await
            .unwrap()
            .is_empty()
    );

    // A zone that does not exist: NotFound, not retried.
    let gone = HostedZone {
        id: "Z0DOESNOTEXIST".into(),
        ..zone.clone()
    };
    let err = clouds
        .dns
        .apply_changes(&gone, &[DnsChange::Upsert(api.clone())], "")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// `list_records` reads every page of the zone (Route 53, and LocalStack,
/// answer at most 300 record sets a page) and keeps the names that end with
/// the suffix, whatever its case and trailing dot.
#[tokio::test]
async fn route53_lists_records_by_suffix_across_pages() {
    crate::needs_emulators!();
    let name = format!("{}.example.com", world::unique("l"));
    let zone = world::create_zone(&name).await;
    let drill = format!("drill-x.{name}.");
    let change = |n: String, t: RrType, v: &str, set: Option<(&str, i64)>| {
        let mut b = ResourceRecordSet::builder()
            .name(n)
            .r#type(t)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(v).build().unwrap());
        if let Some((id, w)) = set {
            b = b.set_identifier(id).weight(w);
        }
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(b.build().unwrap())
            .build()
            .unwrap()
    };
    let mut batch = ChangeBatch::builder()
        // Weighted records named to sort first: LocalStack names no
        // NextRecordIdentifier, so a page must not end inside their set.
        .changes(change(
            format!("a.{drill}"),
            RrType::A,
            "192.0.2.1",
            Some(("one", 1)),
        ))
        .changes(change(
            format!("a.{drill}"),
            RrType::A,
            "192.0.2.2",
            Some(("two", 2)),
        ))
        // Neighbours that do not end with the suffix.
        .changes(change(
            format!("api.{name}"),
            RrType::Cname,
            "api.example.net",
            None,
        ))
        .changes(change(
            format!("drill-y.{name}"),
            RrType::Cname,
            "y.example.net",
            None,
        ));
    for i in 0..310 {
        batch = batch.changes(change(
            format!("r{i:03}.{drill}"),
            RrType::Cname,
            "drill.example.net",
            None,
        ));
    }
    world::sdk()
        .await
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .expect("seed records");

    let (proxy, clouds) = proxied(|s| &mut s.route53_endpoint).await;
    let pages = || proxy.requests(Match::PathContains("/rrset".into()));
    let all = clouds.dns.list_records(&zone, "").await.unwrap();
    // NS and SOA, 2 weighted, 2 neighbours, 310 drill records.
    assert_eq!(
        all.len(),
        316,
        "{:?}",
        all.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    assert!(
        pages() >= 2,
        "the listing followed the pages: {:?}",
        proxy.log()
    );

    let before = pages();
    let mut drills = clouds
        .dns
        .list_records(&zone, drill.trim_end_matches('.').to_uppercase().as_str())
        .await
        .unwrap();
    assert!(pages() - before >= 2, "{:?}", proxy.log());
    assert_eq!(drills.len(), 312);
    assert!(
        drills.iter().all(|r| r.name.ends_with(&drill)),
        "{drills:?}"
    );
    drills.sort_by(|a, b| (&a.name, &a.set_identifier).cmp(&(&b.name, &b.set_identifier)));
    assert_eq!(
        drills[0],
        record(&format!("a.{drill}"), "A", "192.0.2.1", Some(("one", 1)))
    );
    assert_eq!(
        drills[1],
        record(&format!("a.{drill}"), "A", "192.0.2.2", Some(("two", 2)))
    );
    assert_eq!(
        drills[311],
        record(&format!("r309.{drill}"), "CNAME", "drill.example.net", None)
    );

    let none = clouds
        .dns
        .list_records(&zone, &format!("nothing.{name}"))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

/// A listing whose next page starts where the last one did (a page ending
/// inside a set of weighted records, without `NextRecordIdentifier`, as
/// LocalStack answers) fails instead of asking the same page forever.
#[tokio::test]
async fn route53_listing_that_does_not_advance_fails_instead_of_looping() {
    crate::needs_emulators!();
    let (url, count) = fake_server(Arc::new(|_: &str| {
        Some((
            200,
            "<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <ResourceRecordSets><ResourceRecordSet><Name>w.example.com.</Name><Type>A</Type>\
             <SetIdentifier>s0</SetIdentifier><Weight>0</Weight><TTL>60</TTL>\
             <ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>\
             </ResourceRecords></ResourceRecordSet></ResourceRecordSets>\
             <IsTruncated>true</IsTruncated><NextRecordName>w.example.com.</NextRecordName>\
             <NextRecordType>A</NextRecordType><MaxItems>1</MaxItems>\
             </ListResourceRecordSetsResponse>"
                .to_string(),
        ))
    }))
    .await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 2)).await.unwrap();
    let zone = HostedZone {
        id: "Z0FAKE".into(),
        name: "example.com.".into(),
    };
    let err = tokio::time::timeout(Duration::from_secs(10), clouds.dns.list_records(&zone, ""))
        .await
        .expect("the listing ends")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server, "{err}");
    assert!(err.message.contains("w.example.com."), "{err}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "the first page, then its repeat"
    );
}

// ---------------------------------------------------------------- RDS

#[tokio::test]
async fn rds_describes_primaries_and_replicas_per_region() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let primary = world::unique("db");
    let arn = world::create_primary(HOME, &primary).await;

    let p = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .expect("primary exists");
    assert_eq!(p.id, primary);
    assert_eq!(p.arn, arn);
    assert_eq!(p.region, HOME);
    assert_eq!(p.engine, "postgres");
    assert_eq!(p.role, DbRole::Primary);
    assert!(p.is_available(), "{}", p.status);
    assert!(p.endpoint.is_some());
    assert_eq!(p.backup_retention_days, 7);

    // Region matters: the same id elsewhere does not exist.
    assert_eq!(
        clouds
            .database
            .describe_instance(STANDBY, &primary)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        clouds
            .database
            .describe_instance(HOME, &world::unique("nodb"))
            .await
            .unwrap(),
        None
    );

    // A same-region replica made outside drctl reports its source as a bare id.
    let local = world::unique("dbr");
    world::sdk()
        .await
        .rds(HOME)
        .create_db_instance_read_replica()
        .db_instance_identifier(&local)
        .source_db_instance_identifier(&primary)
        .send()
        .await
        .expect("same-region replica");
    let r = clouds
        .database
        .describe_instance(HOME, &local)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.role, DbRole::Replica(primary.clone()));
    let p = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .unwrap();
    assert!(p.replicas.contains(&local), "{:?}", p.replicas);
}

/// Arms (or with `[]` clears) the maintenance RDS will apply to `id`
/// (the world's moto extension, `/_drctl/rds/pending-maintenance`).
pub(crate) async fn arm_maintenance(
    region: &str,
    kind: &str,
    id: &str,
    actions: serde_json::Value,
) {
    let moto = world::vars()
        .get("AWS_ENDPOINT_URL_RDS")
        .cloned()
        .expect("AWS_ENDPOINT_URL_RDS is not in localstack/endpoints.env: rerun localstack/up");
    let r = reqwest::Client::new()
        .post(format!("{moto}/_drctl/rds/pending-maintenance"))
        .json(&serde_json::json!({"region": region, "kind": kind, "id": id, "actions": actions}))
        .send()
        .await
        .expect("moto answers");
    assert!(r.status().is_success(), "{}", r.status());
}

/// DescribePendingMaintenanceActions through the SDK, filtered by the
/// instance's (or cluster's) identifier: its actions with their dates, an
/// instance in another region or of another kind has none.
#[tokio::test]
async fn rds_reads_the_pending_maintenance_of_an_instance_and_a_cluster() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let (db, cluster) = (world::unique("pm-db"), world::unique("pm-cluster"));
    arm_maintenance(
        STANDBY,
        "db",
        &db,
        serde_json::json!([{"Action": "system-update",
            "Description": "New Operating System update is available",
            "AutoAppliedAfterDate": "2026-12-01T00:00:00Z",
            "ForcedApplyDate": "2027-01-15T00:00:00Z", "OptInStatus": "pending"}]),
    )
    .await;
    arm_maintenance(
        STANDBY,
        "cluster",
        &cluster,
        serde_json::json!([{"Action": "db-upgrade"}]),
    )
    .await;
    let read = |of, id: String, region: &'static str| {
        let c = clouds.clone();
        async move {
            c.database
                .pending_maintenance(region, of, &id)
                .await
                .expect("read")
        }
    };
    use drctl::cloud::MaintenanceOf::{Cluster, Instance};
    let got = read(Instance, db.clone(), STANDBY).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].action.as_str(), got[0].opt_in.as_deref()),
        ("system-update", Some("pending"))
    );
    assert_eq!(
        got[0].auto_applied_after.map(|t| t.to_rfc3339()),
        Some("2026-12-01T00:00:00+00:00".into())
    );
    assert!(
        got[0].say().contains("forced on 2027-01-15"),
        "{}",
        got[0].say()
    );
    let c = read(Cluster, cluster.clone(), STANDBY).await;
    assert_eq!(
        c.iter().map(|m| m.action.as_str()).collect::<Vec<_>>(),
        ["db-upgrade"]
    );
    assert!(
        read(Cluster, db.clone(), STANDBY).await.is_empty(),
        "an instance is no cluster"
    );
    assert!(
        read(Instance, db.clone(), HOME).await.is_empty(),
        "another region"
    );
    arm_maintenance(STANDBY, "db", &db, serde_json::json!([])).await;
    arm_maintenance(STANDBY, "cluster", &cluster, serde_json::json!([])).await;
    assert!(read(Instance, db, STANDBY).await.is_empty(), "cleared");
}

#[tokio::test]
async fn rds_cross_region_replica_is_created_and_promoted() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let primary = world::unique("db");
    let arn = world::create_primary(HOME, &primary).await;
    let replica = world::unique("dbx");

    clouds
        .database
        .create_replica(
            STANDBY,
            &replica,
            &arn,
            &ReplicaPlacement {
                instance_class: Some("db.t3.micro".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = clouds
        .database
        .describe_instance(STANDBY, &replica)
        .await
        .unwrap()
        .expect("replica exists in the standby region");
    assert_eq!(r.region, STANDBY);
    assert_eq!(r.role, DbRole::Replica(arn.clone()));
    assert_eq!(r.instance_class.as_deref(), Some("db.t3.micro"));
    assert_eq!(
        clouds
            .database
            .describe_instance(HOME, &replica)
            .await
            .unwrap(),
        None
    );
    let p = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .unwrap();
    assert!(
        p.replicas.contains(&r.arn),
        "{:?} lists {}",
        p.replicas,
        r.arn
    );

    // A replica of a source that does not exist: NotFound, named.
    let gone = arn.replace(&primary, &world::unique("nodb"));
    let err = clouds
        .database
        .create_replica(
            STANDBY,
            &world::unique("dbx"),
            &gone,
            &ReplicaPlacement::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");

    clouds
        .database
        .promote_replica(STANDBY, &replica)
        .await
        .unwrap();
    // Promoting again is refused: it is a primary now.
    let err = clouds
        .database
        .promote_replica(STANDBY, &replica)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Client, "{err}");
    let r = clouds
        .database
        .describe_instance(STANDBY, &replica)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.role, DbRole::Primary, "after promotion: {r:?}");
    // The old primary is still a primary.
    let p = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.role, DbRole::Primary);
}

#[tokio::test]
async fn rds_restores_to_a_point_in_time_into_a_new_instance() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let source = world::unique("db");
    world::create_primary(HOME, &source).await;

    let latest = world::unique("dbl");
    clouds
        .database
        .restore_to_point_in_time(HOME, &source, &latest, RestorePoint::Latest)
        .await
        .unwrap();
    let l = clouds
        .database
        .describe_instance(HOME, &latest)
        .await
        .unwrap();
    let l = l.expect("restored instance exists");
    assert_eq!(l.role, DbRole::Primary);
    assert_eq!(l.engine, "postgres");

    let at = world::unique("dbt");
    clouds
        .database
        .restore_to_point_in_time(
            HOME,
            &source,
            &at,
            RestorePoint::At(Utc::now() - chrono::Duration::minutes(1)),
        )
        .await
        .unwrap();
    assert!(
        clouds
            .database
            .describe_instance(HOME, &at)
            .await
            .unwrap()
            .is_some()
    );

    let err = clouds
        .database
        .restore_to_point_in_time(
            HOME,
            &world::unique("nodb"),
            &world::unique("x"),
            RestorePoint::Latest,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// A drill's temporary replica: created with tags, found by them in a
/// listing, deleted (safe to repeat) until a describe no longer sees it.
#[tokio::test]
async fn rds_tagged_replica_is_listed_and_deleted() {
    crate::needs_emulators!();
    let primary = world::unique("db");
    let arn = world::create_primary(HOME, &primary).await;
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let run = world::unique("run");
    let want = tags(&[("drctl:drill", &run), ("drctl:owner", "adapters-test")]);

    // A cross-region replica, as a drill makes it.
    let replica = world::unique("dbd");
    clouds
        .database
        .create_replica(
            STANDBY,
            &replica,
            &arn,
            &ReplicaPlacement {
                tags: want.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = clouds
        .database
        .describe_instance(STANDBY, &replica)
        .await
        .unwrap()
        .expect("replica exists");
    assert_eq!(r.tags, want, "the tags arrive with the create");
    assert_eq!(r.role, DbRole::Replica(arn.clone()));

    let listed = clouds.database.list_instances(STANDBY).await.unwrap();
    let found: Vec<_> = listed
        .iter()
        .filter(|d| d.tags.get("drctl:drill") == Some(&run))
        .collect();
    assert_eq!(found.len(), 1, "found by its tag: {listed:?}");
    assert_eq!(found[0].id, replica);
    assert_eq!(found[0].arn, r.arn);
    assert_eq!(found[0].region, STANDBY);
    assert_eq!(found[0].role, DbRole::Replica(arn.clone()));
    assert_eq!(found[0].tags, want);
    let home = clouds.database.list_instances(HOME).await.unwrap();
    let p = home
        .iter()
        .find(|d| d.id == primary)
        .expect("primary listed");
    assert_eq!(p.role, DbRole::Primary);
    assert!(home.iter().all(|d| d.id != replica), "listed per region");

    // moto removes the replica and then answers HTTP 500 (see rds.rs):
    // the adapter reads the instance gone and does not send it again.
    clouds
        .database
        .delete_instance(STANDBY, &replica)
        .await
        .unwrap();
    assert_eq!(
        proxy.forwarded(Match::Action("DeleteDBInstance")),
        1,
        "{:#?}",
        proxy.log()
    );
    assert_eq!(
        clouds
            .database
            .describe_instance(STANDBY, &replica)
            .await
            .unwrap(),
        None
    );
    // Again: nothing to delete, fine.
    clouds
        .database
        .delete_instance(STANDBY, &replica)
        .await
        .unwrap();
    assert_eq!(proxy.forwarded(Match::Action("DeleteDBInstance")), 2);
    assert!(
        clouds
            .database
            .list_instances(STANDBY)
            .await
            .unwrap()
            .iter()
            .all(|d| d.id != replica)
    );

    // A same-region replica, its answer lost after the deletion: done once,
    // and its source no longer lists it.
    let local = world::unique("dbd");
    clouds
        .database
        .create_replica(
            HOME,
            &local,
            &primary,
            &ReplicaPlacement {
                tags: want.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    proxy.inject(
        Match::Action("DeleteDBInstance"),
        proxy::Fault::DropAfterForward,
        1,
    );
    let before = proxy.forwarded(Match::Action("DeleteDBInstance"));
    clouds.database.delete_instance(HOME, &local).await.unwrap();
    assert_eq!(
        proxy.forwarded(Match::Action("DeleteDBInstance")) - before,
        1,
        "{:#?}",
        proxy.log()
    );
    assert_eq!(
        clouds
            .database
            .describe_instance(HOME, &local)
            .await
            .unwrap(),
        None
    );
    let p = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .unwrap();
    assert!(!p.replicas.contains(&local), "{:?}", p.replicas);

    // An instance RDS is already deleting: the refusal
    // (`InvalidDBInstanceState`) means the call is done.
    proxy.inject(
        Match::Action("DeleteDBInstance"),
        proxy::Fault::Error {
            status: 400,
            code: "InvalidDBInstanceState",
        },
        1,
    );
    proxy.inject(
        Match::Action("DescribeDBInstances"),
        proxy::Fault::Rewrite {
            from: "<DBInstanceStatus>available</DBInstanceStatus>".into(),
            to: "<DBInstanceStatus>deleting</DBInstanceStatus>".into(),
        },
        1,
    );
    let before = proxy.forwarded(Match::Action("DeleteDBInstance"));
    clouds
        .database
        .delete_instance(HOME, &primary)
        .await
        .unwrap();
    assert_eq!(proxy.forwarded(Match::Action("DeleteDBInstance")), before);
    assert_eq!(proxy.unspent(), 0, "{:#?}", proxy.log());
    // Without the refusal, the primary itself goes.
    clouds
        .database
        .delete_instance(HOME, &primary)
        .await
        .unwrap();
    assert_eq!(
        clouds
            .database
            .describe_instance(HOME, &primary)
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------- Auto Scaling

#[tokio::test]
async fn autoscaling_describes_and_sets_capacity() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let name = world::unique("asg");
    create_group(HOME, &name, 0, 0, 2).await;

    let g = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .unwrap()
        .expect("group");
    assert_eq!(g.name, name);
    assert_eq!(g.region, HOME);
    assert_eq!(
        g.capacity,
        Capacity {
            min: 0,
            desired: 0,
            max: 2
        }
    );
    assert_eq!(g.instances, 0);

    let want = Capacity {
        min: 1,
        desired: 2,
        max: 4,
    };
    clouds.asg().set_capacity(HOME, &name, want).await.unwrap();
    let g = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.capacity, want);
    assert_eq!(g.instances, 2);
    assert_eq!(g.in_service, 2, "moto puts instances in service at once");

    assert_eq!(
        clouds.asg().describe_group(STANDBY, &name).await.unwrap(),
        None
    );
    assert_eq!(
        clouds
            .asg()
            .describe_group(HOME, &world::unique("noasg"))
            .await
            .unwrap(),
        None
    );
}

/// A drill keeps the capacity to restore in the group's tags: written,
/// replaced, read back, removed (absent keys are fine; no keys, no call).
#[tokio::test]
async fn autoscaling_tags_and_untags_a_group() {
    crate::needs_emulators!();
    let name = world::unique("asgt");
    create_group(HOME, &name, 0, 0, 2).await;
    let (proxy, clouds) = proxied(|s| &mut s.autoscaling_endpoint).await;

    clouds
        .asg()
        .tag_group(
            HOME,
            &name,
            &tags(&[("drctl:drill", "run-1"), ("drctl:restore", "0/0/2")]),
        )
        .await
        .unwrap();
    clouds
        .asg()
        .tag_group(HOME, &name, &tags(&[("drctl:drill", "run-2")]))
        .await
        .unwrap();
    let g = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .unwrap()
        .expect("group");
    assert_eq!(
        g.tags,
        tags(&[("drctl:drill", "run-2"), ("drctl:restore", "0/0/2")])
    );
    assert_eq!(
        g.capacity,
        Capacity {
            min: 0,
            desired: 0,
            max: 2
        }
    );
    // Tags of the group, not of the instances it launches.
    let raw = world::sdk()
        .await
        .autoscaling(HOME)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&name)
        .send()
        .await
        .unwrap();
    let raw_tags = raw.auto_scaling_groups()[0].tags();
    assert_eq!(raw_tags.len(), 2, "{raw_tags:?}");
    assert!(
        raw_tags
            .iter()
            .all(|t| t.propagate_at_launch() == Some(false)
                && t.resource_type() == Some("auto-scaling-group")
                && t.resource_id() == Some(name.as_str())),
        "{raw_tags:?}"
    );

    clouds
        .asg()
        .untag_group(HOME, &name, &["drctl:drill".into(), "no-such-key".into()])
        .await
        .unwrap();
    let g = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.tags, tags(&[("drctl:restore", "0/0/2")]));

    clouds.asg().untag_group(HOME, &name, &[]).await.unwrap();
    clouds
        .asg()
        .tag_group(HOME, &name, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(proxy.requests(Match::Action("DeleteTags")), 1);
    assert_eq!(proxy.requests(Match::Action("CreateOrUpdateTags")), 2);
}

// ---------------------------------------------------------------- CloudWatch

#[tokio::test]
async fn cloudwatch_names_the_alarms_in_alarm_and_the_missing_ones() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let cw = world::sdk().await.cloudwatch(STANDBY);
    let firing = world::unique("alarm-5xx");
    let calm = world::unique("alarm-latency");
    for name in [&firing, &calm] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .namespace("drctl/test")
            .metric_name("Errors")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
            )
            // LocalStack evaluates a new alarm at once on a thread of its own;
            // with no data points and the default `missing` it would set the
            // alarm to INSUFFICIENT_DATA after the state set below, under load.
            // `ignore` keeps the state the test sets, as AWS does.
            .treat_missing_data("ignore")
            .send()
            .await
            .expect("put alarm");
    }
    for (name, state) in [
        (&firing, aws_sdk_cloudwatch::types::StateValue::Alarm),
        (&calm, aws_sdk_cloudwatch::types::StateValue::Ok),
    ] {
        cw.set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .expect("set alarm state");
    }
    let missing = world::unique("alarm-gone");
    let names = vec![firing.clone(), calm.clone(), missing.clone()];
    let got = clouds.metrics.alarms_firing(STANDBY, &names).await.unwrap();
    assert_eq!(got, [firing, format!("{missing} (missing)")]);
    assert!(
        clouds
            .metrics
            .alarms_firing(STANDBY, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn cloudwatch_reads_replica_lag() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let db = world::unique("lagdb");
    let now = Utc::now();
    let datum = |minutes_ago: i64, secs: f64| {
        let t = now - chrono::Duration::minutes(minutes_ago);
        MetricDatum::builder()
            .metric_name("ReplicaLag")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(&db)
                    .build(),
            )
            .timestamp(aws_smithy_types::DateTime::from_secs(t.timestamp()))
            .value(secs)
            .unit(StandardUnit::Seconds)
            .build()
    };
    world::sdk()
        .await
        .cloudwatch(STANDBY)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum(7, 3.0))
        .metric_data(datum(4, 42.0))
        .metric_data(datum(1, 5.0))
        .send()
        .await
        .expect("put metric data");

    let window = Duration::from_secs(15 * 60);
    let lag = clouds
        .metrics
        .replica_lag(STANDBY, &db, window)
        .await
        .unwrap();
    assert_eq!(lag.max, Some(Duration::from_secs(42)), "{lag:?}");
    assert_eq!(lag.datapoints, 3, "{lag:?}");
    let (latest, at) = lag.latest.expect("latest datapoint");
    assert_eq!(latest, Duration::from_secs(5), "{lag:?}");
    assert!(at > now - chrono::Duration::minutes(3), "{at}");
    assert_eq!(lag.window, window);

    // Nothing for another instance, or in another region.
    let none = clouds
        .metrics
        .replica_lag(STANDBY, &world::unique("nolag"), window)
        .await
        .unwrap();
    assert_eq!((none.max, none.latest, none.datapoints), (None, None, 0));
    let elsewhere = clouds.metrics.replica_lag(HOME, &db, window).await.unwrap();
    assert_eq!(elsewhere.max, None, "{elsewhere:?}");
}

/// Regression (issue 30): LocalStack's CloudWatch matched a dimension by
/// substring (`LIKE '%Name=Value%'`), so the lag of `orders-use1` was also
/// every `orders-use1-<suffix>`'s: a test's one-hour lag showed in the
/// reference world's status and refused its failover.
/// `localstack/patch_moto.py` ends each value at its separator.
#[tokio::test]
async fn regression_a_lag_read_included_every_id_that_extends_the_one_named() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let cluster = world::unique("lagprefix");
    let longer = format!("{cluster}-copy");
    let datum = |id: &str, ms: f64| {
        MetricDatum::builder()
            .metric_name("AuroraGlobalDBRPOLag")
            .dimensions(
                Dimension::builder()
                    .name("DBClusterIdentifier")
                    .value(id)
                    .build(),
            )
            .timestamp(aws_smithy_types::DateTime::from_secs(
                (Utc::now() - chrono::Duration::minutes(1)).timestamp(),
            ))
            .value(ms)
            .unit(StandardUnit::Milliseconds)
            .build()
    };
    world::sdk()
        .await
        .cloudwatch(STANDBY)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum(&cluster, 2000.0))
        .metric_data(datum(&longer, 3_600_000.0))
        .send()
        .await
        .expect("put metric data");
    let window = Duration::from_secs(15 * 60);
    let lag = clouds
        .metrics
        .cluster_lag(STANDBY, &cluster, window)
        .await
        .unwrap();
    assert_eq!(lag.max, Some(Duration::from_secs(2)), "{lag:?}");
    assert_eq!(lag.datapoints, 1, "{lag:?}");
    let other = clouds
        .metrics
        .cluster_lag(STANDBY, &longer, window)
        .await
        .unwrap();
    assert_eq!(other.max, Some(Duration::from_secs(3600)), "{other:?}");
}

// ---------------------------------------------------------------- objects

async fn exercise_store(bucket: &str, scheme: &str) {
    let clouds = world::clouds().await;
    let base = ObjectUrl::parse(&format!("{scheme}://{bucket}")).unwrap();
    let objects = &clouds.objects;

    assert!(
        objects.bucket_exists("us-east-1", &base).await.unwrap(),
        "{base} exists"
    );
    let missing = ObjectUrl::parse(&format!("{scheme}://{}", world::unique("nobucket"))).unwrap();
    assert!(
        !objects.bucket_exists("us-east-1", &missing).await.unwrap(),
        "{missing} does not exist"
    );

    let url = base.join("runs/r1/journal.jsonl");
    let written = objects
        .put(
            "us-east-1",
            &url,
            Bytes::from_static(b"one"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert!(matches!(written, PutOutcome::Written(_)), "{written:?}");
    assert_eq!(
        objects.get("us-east-1", &url).await.unwrap(),
        Some(Bytes::from_static(b"one"))
    );
    objects
        .put(
            "us-east-1",
            &url,
            Bytes::from_static(b"two"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_eq!(
        objects.get("us-east-1", &url).await.unwrap(),
        Some(Bytes::from_static(b"two"))
    );

    let once = base.join("runs/r1/manifest.json");
    let first = objects
        .put(
            "us-east-1",
            &once,
            Bytes::from_static(b"first"),
            PutMode::CreateOnly,
        )
        .await
        .unwrap();
    assert!(matches!(first, PutOutcome::Written(_)), "{first:?}");
    let second = objects
        .put(
            "us-east-1",
            &once,
            Bytes::from_static(b"second"),
            PutMode::CreateOnly,
        )
        .await
        .unwrap();
    assert_eq!(second, PutOutcome::AlreadyExists);
    assert_eq!(
        objects.get("us-east-1", &once).await.unwrap(),
        Some(Bytes::from_static(b"first"))
    );

    assert_eq!(
        objects
            .get("us-east-1", &base.join("nothing/here"))
            .await
            .unwrap(),
        None
    );
    let err = objects
        .get("us-east-1", &missing.join("k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&missing.bucket), "{err}");
}

#[tokio::test]
async fn s3_puts_gets_and_refuses_to_overwrite() {
    crate::needs_emulators!();
    let bucket = world::unique("ev");
    create_s3_bucket(&bucket).await;
    exercise_store(&bucket, "s3").await;
}

#[tokio::test]
async fn gcs_puts_gets_and_refuses_to_overwrite() {
    crate::needs_emulators!();
    let bucket = world::unique("ev");
    world::create_gcs_bucket(&bucket).await;
    exercise_store(&bucket, "gs").await;
}

// ---------------------------------------------------------------- STS

#[tokio::test]
async fn sts_reports_the_caller() {
    crate::needs_emulators!();
    let who = world::clouds()
        .await
        .identity
        .caller("us-east-1")
        .await
        .unwrap();
    assert!(!who.account.is_empty(), "{who:?}");
    assert!(who.arn.starts_with("arn:aws"), "{who:?}");
    assert!(!who.user_id.is_empty(), "{who:?}");
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn not_found_errors_name_the_resource_and_region() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let id = world::unique("nodb");
    let err = clouds
        .database
        .promote_replica(STANDBY, &id)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.code.as_deref(), Some("DBInstanceNotFound"));
    assert_eq!((err.service, err.operation), ("rds", "PromoteReadReplica"));
    let text = err.to_string();
    assert!(text.contains(&id) && text.contains(STANDBY), "{text}");
    assert!(text.contains("hint:"), "{text}");

    let group = world::unique("noasg");
    let err = clouds
        .asg()
        .set_capacity(
            HOME,
            &group,
            Capacity {
                min: 0,
                desired: 0,
                max: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&group) && err.to_string().contains(HOME),
        "{err}"
    );
}

#[tokio::test]
async fn closed_ports_fail_as_connection_errors_after_bounded_retries() {
    crate::needs_emulators!();
    let settings = settings_at("http://127.0.0.1:1", 2);
    let clouds = drctl::cloud::connect(&settings).await.unwrap();
    let started = Instant::now();

    let err = clouds
        .database
        .describe_instance(HOME, "db")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    assert_eq!(&*err.region, HOME);
    let err = clouds.dns.find_zone("example.com").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    let err = clouds.identity.caller("us-east-1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    let s3 = ObjectUrl::parse("s3://some-bucket/k").unwrap();
    let err = clouds.objects.get("us-east-1", &s3).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    let gs = ObjectUrl::parse("gs://some-bucket/k").unwrap();
    let err = clouds.objects.get("us-east-1", &gs).await.unwrap_err();
    assert_eq!(
        (err.kind, err.service),
        (ErrorKind::Connection, "gcs"),
        "{err}"
    );
    let err = clouds
        .objects
        .put(
            "us-east-1",
            &gs,
            Bytes::from_static(b"x"),
            PutMode::CreateOnly,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    let err = clouds
        .objects
        .bucket_exists("us-east-1", &gs)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");

    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn transient_failures_are_retried_a_bounded_number_of_times() {
    crate::needs_emulators!();
    // Connections dropped without an answer: 1 attempt + 2 retries.
    let (url, count) = fault_server(Fault::Drop).await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 2)).await.unwrap();
    let err = clouds
        .database
        .describe_instance(HOME, "db")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // 503s: retried the same way, classified as server errors.
    let (url, count) = fault_server(Fault::Status(503, "ServiceUnavailable")).await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 2)).await.unwrap();
    let err = clouds
        .database
        .describe_instance(HOME, "db")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server, "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // Throttling: retried too.
    let (url, count) = fault_server(Fault::Status(400, "Throttling")).await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 1)).await.unwrap();
    let err = clouds.asg().describe_group(HOME, "g").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 2);

    // GCS: the storage crate's own retry loop is bounded the same way
    // (by default it would keep trying for 300 s).
    let (url, count) = fault_server(Fault::Status(503, "ServiceUnavailable")).await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 2)).await.unwrap();
    let gs = ObjectUrl::parse("gs://some-bucket/k").unwrap();
    let started = Instant::now();
    let err = clouds.objects.get("us-east-1", &gs).await.unwrap_err();
    assert_eq!((err.kind, err.service), (ErrorKind::Server, "gcs"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Bounded: far below the 300 s of the crate's default retry loop,
    // with room for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    crate::needs_emulators!();
    let (url, count) = fault_server(Fault::Status(400, "InvalidParameterValue")).await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 3)).await.unwrap();
    let err = clouds
        .database
        .promote_replica(HOME, "db")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Client, "{err}");
    assert_eq!(err.code.as_deref(), Some("InvalidParameterValue"));
    assert!(err.message.contains("injected"), "{err}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a client error is sent once"
    );
}

// ---------------------------------------------------------------- seeded world

#[tokio::test]
async fn adapters_read_the_seeded_reference_world() {
    crate::needs_emulators!();
    let suffix = world::unique("s");
    let seeded = tokio::task::spawn_blocking({
        let suffix = suffix.clone();
        move || world::seed(&suffix)
    })
    .await
    .unwrap();
    let clouds = world::clouds().await;
    let s = |v: &serde_json::Value| v.as_str().expect("string in seed JSON").to_string();

    let zone_name = s(&seeded["zone"]["name"]);
    let zone = clouds
        .dns
        .find_zone(&zone_name)
        .await
        .unwrap()
        .expect("seeded zone");
    assert_eq!(zone.id, s(&seeded["zone"]["id"]));
    let ledger = clouds
        .dns
        .read_records(&zone, &format!("ledger.{zone_name}"), "CNAME")
        .await
        .unwrap();
    let mut weights: Vec<_> = ledger.iter().map(|r| r.weight).collect();
    weights.sort();
    assert_eq!(weights, vec![Some(0), Some(100)], "{ledger:?}");

    let payments = &seeded["databases"]["payments"];
    let replica = &payments["replica"];
    let r = clouds
        .database
        .describe_instance(&s(&replica["region"]), &s(&replica["id"]))
        .await
        .unwrap()
        .expect("seeded replica");
    assert_eq!(r.role, DbRole::Replica(s(&replica["source"])));
    let lag = clouds
        .metrics
        .replica_lag(
            &s(&replica["region"]),
            &s(&replica["id"]),
            Duration::from_secs(30 * 60),
        )
        .await
        .unwrap();
    let seeded_lag = payments["replica_lag_seconds"].as_u64().unwrap();
    assert_eq!(lag.max, Some(Duration::from_secs(seeded_lag)), "{lag:?}");

    let group = format!("payments-api-usw2-{suffix}");
    let g = clouds
        .asg()
        .describe_group(HOME, &group)
        .await
        .unwrap()
        .expect("group");
    assert_eq!(
        g.capacity,
        Capacity {
            min: 2,
            desired: 4,
            max: 8
        }
    );

    // The evidence bucket lives in us-east-1 while the default region is
    // us-west-2: the S3 adapter finds the bucket's region by itself.
    let s3 = ObjectUrl::parse(&format!("s3://{}", s(&seeded["buckets"]["s3"]["name"]))).unwrap();
    assert!(
        clouds
            .objects
            .bucket_exists("us-east-1", &s3)
            .await
            .unwrap()
    );
    let key = s3.join(&world::unique("probe"));
    let put = clouds
        .objects
        .put(
            "us-east-1",
            &key,
            Bytes::from_static(b"evidence"),
            PutMode::CreateOnly,
        )
        .await
        .unwrap();
    assert!(matches!(put, PutOutcome::Written(_)), "{put:?}");
    assert_eq!(
        clouds.objects.get("us-east-1", &key).await.unwrap(),
        Some(Bytes::from_static(b"evidence"))
    );
    let gs = ObjectUrl::parse(&format!("gs://{}", s(&seeded["buckets"]["gcs"]["name"]))).unwrap();
    assert!(
        clouds
            .objects
            .bucket_exists("us-east-1", &gs)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_replica_is_described_while_its_source_region_is_down() {
    crate::needs_emulators!();
    // us-east-1 answers with a replica of a us-west-2 source; every request
    // signed for us-west-2 has its connection dropped (the failing region).
    // Regression: describing the standby once asked the source's region,
    // which during an outage hangs until the attempt timeout.
    let source = "arn:aws:rds:us-west-2:123456789012:db:db";
    let west = Arc::new(AtomicUsize::new(0));
    let west_count = west.clone();
    let (url, _) = fake_server(Arc::new(move |req: &str| {
        if req.contains("/us-west-2/rds/") {
            west_count.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        Some((
            200,
            format!(
                "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
                 <DescribeDBInstancesResult><DBInstances><DBInstance>\
                 <DBInstanceIdentifier>db-use1</DBInstanceIdentifier>\
                 <DBInstanceArn>arn:aws:rds:us-east-1:123456789012:db:db-use1</DBInstanceArn>\
                 <Engine>postgres</Engine><DBInstanceStatus>available</DBInstanceStatus>\
                 <ReadReplicaSourceDBInstanceIdentifier>{source}</ReadReplicaSourceDBInstanceIdentifier>\
                 <BackupRetentionPeriod>0</BackupRetentionPeriod>\
                 </DBInstance></DBInstances></DescribeDBInstancesResult>\
                 <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>\
                 </DescribeDBInstancesResponse>"
            ),
        ))
    }))
    .await;
    let clouds = drctl::cloud::connect(&settings_at(&url, 3)).await.unwrap();
    let r = clouds
        .database
        .describe_instance(STANDBY, "db-use1")
        .await
        .unwrap()
        .expect("the replica answers");
    assert_eq!(r.role, DbRole::Replica(source.to_string()));
    assert_eq!(
        west.load(Ordering::SeqCst),
        0,
        "the source's region is never asked: it may be the one that is down"
    );
}

#[tokio::test]
async fn rds_instance_is_renamed_and_keeps_its_data_and_role() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let old = world::unique("db");
    let arn = world::create_primary(HOME, &old).await;
    let new = world::unique("dbpre");

    clouds
        .database
        .rename_instance(HOME, &old, &new)
        .await
        .unwrap();
    assert_eq!(
        clouds.database.describe_instance(HOME, &old).await.unwrap(),
        None,
        "the old id is free for a new instance"
    );
    let renamed = clouds
        .database
        .describe_instance(HOME, &new)
        .await
        .unwrap()
        .expect("the instance lives on under its new id");
    assert_eq!(renamed.role, DbRole::Primary);
    assert_eq!(renamed.engine, "postgres");
    assert_ne!(renamed.arn, arn, "its ARN follows the new id");

    // Renaming an instance that does not exist: NotFound, naming it.
    let err = clouds
        .database
        .rename_instance(HOME, &old, &world::unique("dbpre"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&old), "{err}");
}

/// The emulator world stands in for RDS's ReplicaLag publisher
/// (localstack/lag_publisher.py): a replica created at run time gets lag
/// data points on the real CloudWatch API path (its `drctl:replica-lag` tag,
/// else 1 s); one tagged `none` gets none, so its lag stays unknown.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_created_at_run_time_get_replica_lag_from_the_world() {
    crate::needs_emulators!();
    let clouds = world::clouds().await;
    let primary_id = world::unique("lagsrc");
    let primary = world::create_primary(HOME, &primary_id).await;
    let rds = world::sdk().await.rds(STANDBY);
    let tagged = world::unique("lagtag");
    let untagged = world::unique("lagdef");
    let unknown = world::unique("lagnone");
    for (id, tag) in [
        (&tagged, Some("42")),
        (&untagged, None),
        (&unknown, Some("none")),
    ] {
        let mut req = rds
            .create_db_instance_read_replica()
            .db_instance_identifier(id)
            .source_db_instance_identifier(&primary);
        if let Some(v) = tag {
            req = req.tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("drctl:replica-lag")
                    .value(v)
                    .build(),
            );
        }
        req.send().await.expect("cross-region replica");
    }
    // The publisher runs every 10 s (a round takes longer on a busy
    // machine: it lists every replica of every test).
    let window = Duration::from_secs(120);
    let (a, b) = world::wait_for_every(
        "ReplicaLag published for both run-time replicas (localstack/.run/lagpub.log says why not)",
        Duration::from_secs(120),
        Duration::from_secs(1),
        async || {
            let lag = async |id: &str| {
                (clouds.metrics.replica_lag(STANDBY, id, window).await)
                    .map_err(|e| format!("GetMetricData for {id}: {e}"))
            };
            let (a, b) = (lag(&tagged).await?, lag(&untagged).await?);
            if a.datapoints > 0 && b.datapoints > 0 {
                return Ok((a, b));
            }
            Err(format!("{a:?} {b:?}"))
        },
    )
    .await;
    assert_eq!(a.max, Some(Duration::from_secs(42)), "{a:?}");
    assert_eq!(b.max, Some(Duration::from_secs(1)), "{b:?}");
    let none = clouds
        .metrics
        .replica_lag(STANDBY, &unknown, window)
        .await
        .unwrap();
    assert_eq!(none.datapoints, 0, "{none:?}");
    assert_eq!(none.max, None);
}
