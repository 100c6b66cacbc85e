//! The reference world for unit tests: the plans under `plans/` as a fake
//! cloud holds them.

use super::*;

/// The reference world's short name of a region (`use1`).
fn region_tag(region: &str) -> &'static str {
    match region {
        "us-west-2" => "usw2",
        "us-east-1" => "use1",
        _ => "euw1",
    }
}

/// The reference world of `localstack/seed` and `plans/`, in memory
/// (payments and ledger served from us-west-2 with standbys in us-east-1,
/// and eu-west-1 for payments; checkout served from us-east-1 with
/// standbys in us-west-2 and eu-west-1): the one world the unit tests
/// of the engine, the fault loop and status share. `lags` are the ReplicaLag
/// datapoints of the payments and the ledger replica (and of orders'
/// Aurora secondaries).
pub(crate) fn reference_world(lags: (&[f64], &[f64])) -> FakeCloud {
    let cname = |name: &str, value: &str, set: Option<(&str, i64)>| DnsRecord {
        name: name.into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        values: vec![value.into()],
        set_identifier: set.map(|(s, _)| s.into()),
        weight: set.map(|(_, w)| w),
        routing: None,
    };
    let f = FakeCloud::new();
    f.add_zone("example.com.");
    for (db, lag) in [("payments-db", lags.0), ("ledger-db", lags.1)] {
        f.add_primary("us-west-2", db);
        f.add_replica("us-east-1", &format!("{db}-use1"), ("us-west-2", db));
        f.set_lag("us-east-1", &format!("{db}-use1"), lag);
    }
    // The third region: a payments replica at standby.
    f.add_replica(
        "eu-west-1",
        "payments-db-euw1",
        ("us-west-2", "payments-db"),
    );
    f.set_lag("eu-west-1", "payments-db-euw1", lags.0);
    // checkout: home us-east-1, standbys us-west-2 then eu-west-1. Its
    // data-plane setup (controls, health checks, failover records) is made
    // by the tests that need it, through `dns prepare`.
    f.add_primary("us-east-1", "checkout-db");
    for (region, id) in [
        ("us-west-2", "checkout-db-usw2"),
        ("eu-west-1", "checkout-db-euw1"),
    ] {
        f.add_replica(region, id, ("us-east-1", "checkout-db"));
        f.set_lag(region, id, &[2.0]);
    }
    for (region, name, min, desired, max) in [
        ("us-west-2", "payments-api-usw2", 2, 4, 8),
        ("us-east-1", "payments-api-use1", 0, 0, 8),
        ("eu-west-1", "payments-api-euw1", 0, 0, 8),
        ("us-west-2", "ledger-workers-usw2", 1, 2, 4),
        ("us-east-1", "ledger-workers-use1", 0, 0, 4),
        ("us-east-1", "checkout-web-use1", 2, 3, 6),
        ("us-west-2", "checkout-web-usw2", 0, 1, 6),
        ("eu-west-1", "checkout-web-euw1", 0, 1, 6),
    ] {
        f.add_group(region, name, Capacity { min, desired, max });
    }
    // orders: an Aurora global database written in us-west-2, an EKS
    // node group and an ECS service per region.
    f.add_global(
        "orders-global",
        &[
            ("us-west-2", "orders-usw2"),
            ("us-east-1", "orders-use1"),
            ("eu-west-1", "orders-euw1"),
        ],
    );
    for region in ["us-east-1", "eu-west-1"] {
        let id = format!("orders-{}", region_tag(region));
        f.set_lag(region, &id, lags.0);
    }
    for (region, min, desired, max) in [
        ("us-west-2", 2, 3, 6),
        ("us-east-1", 0, 0, 6),
        ("eu-west-1", 0, 0, 6),
    ] {
        let tag = region_tag(region);
        f.add_node_group(
            region,
            &format!("orders-eks-{tag}"),
            &format!("orders-nodes-{tag}"),
            Capacity { min, desired, max },
        );
        // The orders workers' ECS service: 4 tasks where it serves, 1 on
        // standby.
        let tasks = if desired > 0 { 4 } else { 1 };
        f.add_ecs_service(
            region,
            &format!("orders-ecs-{tag}"),
            "orders-workers",
            tasks,
        );
    }
    f.put_record(
        "example.com.",
        cname(
            "orders-db.example.com.",
            "orders-usw2.cluster-fake.us-west-2.rds.amazonaws.com",
            None,
        ),
    );
    f.put_record(
        "example.com.",
        cname("api.example.com.", "api-usw2.example.com.", None),
    );
    f.put_record(
        "example.com.",
        cname(
            "payments-db.example.com.",
            "payments-db.fake.us-west-2.rds.amazonaws.com",
            None,
        ),
    );
    for (set, w, v) in [
        ("us-west-2", 100, "ledger-usw2.example.com."),
        ("us-east-1", 0, "ledger-use1.example.com."),
    ] {
        f.put_record(
            "example.com.",
            cname("ledger.example.com.", v, Some((set, w))),
        );
    }
    f
}
