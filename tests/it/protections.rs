//! Route 53 record-set protections through the real adapter (a request
//! signed by aws-sigv4, the crate having no operation yet) against the
//! world's Route 53 (localstack/route53_ext.py in front of LocalStack):
//! read page by page, seen by `status`, refused by the failover before any
//! write (exit 3), and never lifted by drctl.

use crate::fixture::Fixture;
use crate::world;

const NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// Creates or deletes protections of `(name, type, comment)` in zone `id`,
/// straight at the world's Route 53 (as an operator's CLI would).
async fn protections(zone_id: &str, entries: &[(String, &str, Option<&str>)], delete: bool) {
    let endpoint = world::settings()
        .route53_endpoint
        .expect("the world's Route 53 endpoint");
    let (tag, path, root) = if delete {
        (
            "ResourceRecordSetProtectionKey",
            "rrsetprotection/delete",
            "DeleteResourceRecordSetProtectionsRequest",
        )
    } else {
        (
            "ResourceRecordSetProtectionConfig",
            "rrsetprotection",
            "CreateResourceRecordSetProtectionsRequest",
        )
    };
    let items: String = (entries.iter())
        .map(|(name, rtype, comment)| {
            let comment = (comment.filter(|_| !delete))
                .map(|c| format!("<Comment>{c}</Comment>"))
                .unwrap_or_default();
            format!("<{tag}><RecordName>{name}</RecordName><RecordType>{rtype}</RecordType>{comment}</{tag}>")
        })
        .collect();
    let body = format!(r#"<{root} xmlns="{NS}"><Protections>{items}</Protections></{root}>"#);
    let resp = reqwest::Client::new()
        .post(format!("{endpoint}/2013-04-01/hostedzone/{zone_id}/{path}"))
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .expect("the world's Route 53 answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {text}");
}

#[tokio::test]
async fn the_adapter_reads_every_page_of_a_zones_protections() {
    if !world::enabled() {
        return;
    }
    let zone = world::create_zone(&format!("{}.example.com", world::unique("prot"))).await;
    let names: Vec<(String, &str, Option<&str>)> = (0..350)
        .map(|i| (format!("h{i:03}.{}", zone.name), "A", Some("bulk")))
        .collect();
    for chunk in names.chunks(100) {
        protections(&zone.id, chunk, false).await;
    }
    let read = world::clouds().await.dns.protections(&zone).await.unwrap();
    assert_eq!(read.len(), 350, "300 a page: two pages");
    assert_eq!(read[0].name, format!("h000.{}", zone.name));
    assert_eq!(
        (read[349].rtype.as_str(), read[349].comment.as_deref()),
        ("A", Some("bulk"))
    );
    for chunk in names.chunks(100) {
        protections(&zone.id, chunk, true).await;
    }
    assert!(
        world::clouds()
            .await
            .dns
            .protections(&zone)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_protected_record_is_not_ready_and_its_failover_refused_before_any_write() {
    if !world::enabled() {
        return;
    }
    let fx = Fixture::new("prot").await;
    let api = fx.host("api");
    let held = [(api.clone(), "CNAME", Some("change freeze OPS-7"))];
    protections(&fx.zone_id, &held, false).await;
    let before = fx.snapshot().await;

    let status = fx.drctl(&["status", "--plan", "payments"]).await;
    assert_eq!(status.code, Some(1), "{}", status.all());
    assert!(
        status.out.contains(&format!("record {api} CNAME in zone"))
            && status.out.contains("change freeze OPS-7")
            && status
                .out
                .contains("delete-resource-record-set-protections"),
        "{}",
        status.all()
    );

    let ran = fx.failover_payments(&["--accept-data-loss", "1h"]).await;
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(
        ran.err.contains(&api)
            && ran.err.contains("is protected")
            && ran.err.contains("health-check"),
        "{}",
        ran.all()
    );
    // Nothing moved, and the protection is still there.
    assert_eq!(fx.snapshot().await, before);
    let zone = drctl::cloud::HostedZone {
        id: fx.zone_id.clone(),
        name: fx.zone.clone(),
    };
    let left = world::clouds().await.dns.protections(&zone).await.unwrap();
    assert_eq!(left.len(), 1, "drctl never lifts a protection: {left:?}");

    // Lifted, the same failover goes through.
    protections(&fx.zone_id, &held, true).await;
    let ran = fx.failover_payments(&["--accept-data-loss", "1h"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
}
