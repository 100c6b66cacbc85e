//! The adapters' retry, timeout and waiting behaviour, shown through the
//! [`FaultProxy`] placed between the real adapters and an emulator: the
//! emulators alone never throttle, fail, drop or linger in a transitional
//! state.
//!
//! Each test starts its own proxy in front of one service (the others go to
//! the emulators directly), with a small retry policy, and creates its
//! fixtures with raw SDK clients straight at the emulator (not through the
//! proxy), so the proxy's counters see the adapter's requests only.

use crate::world::{Asg, AsgCalls};
use std::time::{Duration, Instant};

use drctl::cloud::retry::RetryPolicy;
use drctl::cloud::{CloudSettings, Clouds, DbRole, ErrorKind, ReplicaPlacement};

use crate::proxy::{Fault, FaultProxy, Match};
use crate::world::{self, HOME};

/// The policy of these tests: 3 retries, 10 to 50 ms apart.
const POLICY: RetryPolicy = RetryPolicy {
    max_retries: 3,
    min_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(50),
};

/// The emulator settings with [`POLICY`], and the endpoint chosen by `slot`
/// pointed at a fresh proxy in front of what it pointed at.
async fn proxied(slot: fn(&mut CloudSettings) -> &mut Option<String>) -> (FaultProxy, Clouds) {
    let mut settings = CloudSettings {
        retry: POLICY,
        ..world::settings()
    };
    let endpoint = slot(&mut settings);
    let upstream = endpoint.clone().expect("the emulator endpoint is set");
    let proxy = FaultProxy::start(&upstream).await;
    *endpoint = Some(proxy.url());
    let clouds = drctl::cloud::connect(&settings)
        .await
        .expect("adapters build");
    (proxy, clouds)
}

// ---------------------------------------------------------------- fixtures
// (the minimum of adapters.rs' fixtures, created straight at the emulator)

/// Creates a same-region read replica of `source_id`.
async fn create_replica(id: &str, source_id: &str) {
    world::sdk()
        .await
        .rds(HOME)
        .create_db_instance_read_replica()
        .db_instance_identifier(id)
        .source_db_instance_identifier(source_id)
        .send()
        .await
        .expect("create read replica");
}

async fn create_group(name: &str) {
    let asg = world::sdk().await.autoscaling(HOME);
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
        .min_size(0)
        .desired_capacity(0)
        .max_size(2)
        .availability_zones(format!("{HOME}a"))
        .send()
        .await
        .expect("create auto scaling group");
}

const DESCRIBE_DB: Match = Match::Action("DescribeDBInstances");
const DESCRIBE_GROUPS: Match = Match::Action("DescribeAutoScalingGroups");

// ---------------------------------------------------------------- retries

#[tokio::test]
async fn throttled_describe_is_retried_until_it_succeeds() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let id = world::unique("fault-thr");
    world::create_primary(HOME, &id).await;
    proxy.inject(DESCRIBE_DB, Fault::Throttle, 2);

    let inst = clouds
        .database
        .describe_instance(HOME, &id)
        .await
        .expect("succeeds after two throttled attempts")
        .expect("instance exists");
    assert_eq!(inst.id, id);
    assert_eq!(proxy.requests(DESCRIBE_DB), 3, "{:#?}", proxy.log());
    assert_eq!(proxy.forwarded(DESCRIBE_DB), 1);
    assert_eq!(proxy.unspent(), 0);
}

#[tokio::test]
async fn unavailable_service_is_retried_until_it_succeeds() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.autoscaling_endpoint).await;
    let name = world::unique("fault-503");
    create_group(&name).await;
    proxy.inject(DESCRIBE_GROUPS, Fault::Status(503), 2);

    let group = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .expect("succeeds after two 503s")
        .expect("group exists");
    assert_eq!(group.name, name);
    assert_eq!(proxy.requests(DESCRIBE_GROUPS), 3, "{:#?}", proxy.log());
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.route53_endpoint).await;
    let name = format!("{}.example.com", world::unique("fault-drop"));
    world::create_zone(&name).await;
    let by_name = Match::PathContains("/2013-04-01/hostedzonesbyname".into());
    proxy.inject(by_name.clone(), Fault::Drop, 1);

    let zone = clouds
        .dns
        .find_zone(&name)
        .await
        .expect("succeeds after one dropped connection")
        .expect("zone found");
    assert_eq!(zone.name, format!("{name}."));
    assert_eq!(proxy.requests(by_name.clone()), 2, "{:#?}", proxy.log());
    assert_eq!(proxy.forwarded(by_name), 1);
}

#[tokio::test]
async fn throttling_beyond_the_retries_fails_naming_resource_and_region() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let id = world::unique("fault-thr-max");
    proxy.inject(DESCRIBE_DB, Fault::Throttle, 100);

    let err = clouds
        .database
        .describe_instance(HOME, &id)
        .await
        .expect_err("throttled on every attempt");
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    assert_eq!(err.code.as_deref(), Some("Throttling"));
    let text = err.to_string();
    assert!(text.contains(&id), "names the resource: {text}");
    assert!(text.contains(HOME), "names the region: {text}");
    assert!(text.contains("Rate exceeded"), "{text}");
    assert_eq!(
        proxy.requests(DESCRIBE_DB),
        POLICY.max_retries + 1,
        "{:#?}",
        proxy.log()
    );
    assert_eq!(proxy.forwarded(DESCRIBE_DB), 0);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.autoscaling_endpoint).await;
    let name = world::unique("fault-400");
    proxy.inject(
        DESCRIBE_GROUPS,
        Fault::Error {
            status: 400,
            code: "InvalidParameterValue",
        },
        5,
    );

    let err = clouds
        .asg()
        .describe_group(HOME, &name)
        .await
        .expect_err("a 400 fails");
    assert_eq!(err.kind, ErrorKind::Client, "{err}");
    assert_eq!(err.code.as_deref(), Some("InvalidParameterValue"));
    assert!(err.to_string().contains(&name), "{err}");
    assert_eq!(proxy.requests(DESCRIBE_GROUPS), 1, "{:#?}", proxy.log());
    assert_eq!(proxy.unspent(), 4);
}

/// The adapters' attempt timeout is 30 s (`operation_attempt_timeout` in
/// `src/cloud/aws/mod.rs`, not settable from `CloudSettings`), too long for a
/// test that waits it out; so this shows the latency the proxy adds, on the
/// path that waits, and that a slow answer is still an answer.
#[tokio::test]
async fn delayed_answers_add_latency_and_still_succeed() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.autoscaling_endpoint).await;
    let name = world::unique("fault-slow");
    create_group(&name).await;
    let delay = Duration::from_millis(400);
    proxy.inject(DESCRIBE_GROUPS, Fault::Delay(delay), 1);

    let started = Instant::now();
    let group = clouds.asg().describe_group(HOME, &name).await;
    let slow = started.elapsed();
    assert!(group.expect("a slow answer is an answer").is_some());
    assert!(slow >= delay, "took {slow:?}");

    // The rule is spent: the next one passes untouched (as the proxy
    // records it, not by its time, which a busy machine stretches).
    clouds.asg().describe_group(HOME, &name).await.unwrap();
    let log = proxy.log();
    assert_eq!(proxy.requests(DESCRIBE_GROUPS), 2, "{log:#?}");
    let describes: Vec<&String> = (log.iter())
        .filter(|l| l.contains("DescribeAutoScalingGroups"))
        .collect();
    assert!(
        describes[0].contains("-> Delay") && !describes[1].contains("->"),
        "the rule is spent: {log:#?}"
    );
}

// ---------------------------------------------------------------- states

#[tokio::test]
async fn rewrite_holds_an_instance_in_a_transitional_state() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let id = world::unique("fault-mod");
    world::create_primary(HOME, &id).await;
    proxy.inject(
        DESCRIBE_DB,
        Fault::Rewrite {
            from: "<DBInstanceStatus>available</DBInstanceStatus>".into(),
            to: "<DBInstanceStatus>modifying</DBInstanceStatus>".into(),
        },
        3,
    );

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let inst = clouds
            .database
            .describe_instance(HOME, &id)
            .await
            .unwrap()
            .expect("instance exists");
        statuses.push(inst.status);
    }
    assert_eq!(
        statuses,
        ["modifying", "modifying", "modifying", "available"],
        "{:#?}",
        proxy.log()
    );
    assert_eq!(proxy.requests(DESCRIBE_DB), 4);
}

// ---------------------------------------------------------------- non-idempotent calls

/// A throttled promotion is retried, and reaches RDS exactly once: throttled
/// attempts never got there.
#[tokio::test]
async fn throttled_promotion_reaches_the_database_once() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let primary = world::unique("fault-src");
    let replica = world::unique("fault-rep");
    world::create_primary(HOME, &primary).await;
    create_replica(&replica, &primary).await;
    let promote = Match::Action("PromoteReadReplica");
    proxy.inject(DESCRIBE_DB, Fault::Throttle, 1);
    proxy.inject(promote.clone(), Fault::Throttle, 2);

    clouds
        .database
        .promote_replica(HOME, &replica)
        .await
        .expect("promotion succeeds after throttling");
    assert_eq!(proxy.requests(promote.clone()), 3, "{:#?}", proxy.log());
    assert_eq!(proxy.forwarded(promote), 1, "promoted exactly once");
    let after = clouds
        .database
        .describe_instance(HOME, &replica)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(after.role, DbRole::Primary);
}

/// Regression (`create_whose_answer_is_lost_is_sent_twice`): the create
/// reached the database and took effect, but the connection dropped before
/// the answer came back. The adapter used to retry the create blindly, and
/// moto 5.x accepted the repeat: it re-created the replica under the same id
/// and listed it *twice* on its source. Now a retry after an attempt that may
/// have acted reads the instance first, finds it, and sends nothing more.
#[tokio::test]
async fn create_whose_answer_is_lost_is_not_sent_again() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let primary = world::unique("fault-src");
    let replica = world::unique("fault-lost");
    let source_arn = world::create_primary(HOME, &primary).await;
    let create = Match::Action("CreateDBInstanceReadReplica");
    proxy.inject(create.clone(), Fault::DropAfterForward, 1);

    clouds
        .database
        .create_replica(HOME, &replica, &source_arn, &ReplicaPlacement::default())
        .await
        .expect("the lost answer is recovered by reading the instance");
    assert_eq!(proxy.requests(create.clone()), 1, "{:#?}", proxy.log());
    assert_eq!(proxy.forwarded(create), 1, "the create reached moto once");

    let inst = clouds
        .database
        .describe_instance(HOME, &replica)
        .await
        .unwrap()
        .expect("the replica exists");
    assert!(matches!(inst.role, DbRole::Replica(_)), "{inst:?}");
    let source = clouds
        .database
        .describe_instance(HOME, &primary)
        .await
        .unwrap()
        .expect("the primary exists");
    let listed = source.replicas.iter().filter(|r| **r == replica).count();
    assert_eq!(listed, 1, "the replica is listed once: {source:?}");
}

/// The same lost answer when the read after it lags behind the write (RDS is
/// eventually consistent): the read says "not found", the create is sent
/// again and RDS answers `DBInstanceAlreadyExists` (both injected here, as
/// moto does neither). Regression: the adapter used to report that conflict
/// as a failure, for a create that its own first attempt had done.
#[tokio::test]
async fn create_retried_after_a_lost_answer_conflicting_with_itself_succeeds() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let primary = world::unique("fault-src");
    let replica = world::unique("fault-lost");
    let source_arn = world::create_primary(HOME, &primary).await;
    let create = Match::Action("CreateDBInstanceReadReplica");
    proxy.inject(create.clone(), Fault::DropAfterForward, 1);
    proxy.inject(
        DESCRIBE_DB,
        Fault::Error {
            status: 404,
            code: "DBInstanceNotFound",
        },
        1,
    );
    proxy.inject(
        create.clone(),
        Fault::Error {
            status: 400,
            code: "DBInstanceAlreadyExists",
        },
        1,
    );

    clouds
        .database
        .create_replica(HOME, &replica, &source_arn, &ReplicaPlacement::default())
        .await
        .expect("a conflict with its own earlier attempt is success");
    assert_eq!(proxy.requests(create.clone()), 2, "{:#?}", proxy.log());
    assert_eq!(
        proxy.forwarded(create),
        1,
        "only the first attempt reached moto"
    );

    let inst = clouds
        .database
        .describe_instance(HOME, &replica)
        .await
        .unwrap()
        .expect("the first attempt created it");
    assert!(
        matches!(&inst.role, DbRole::Replica(source) if source.ends_with(&primary)),
        "{inst:?}"
    );
}

/// A promotion whose answer is lost is not sent again: the retry reads the
/// instance, sees the promotion under way, and only writes the promotion tag.
///
/// RDS shows a promotion under way as status `modifying`; moto keeps no trace
/// of a promotion in its API at all (see `src/cloud/aws/rds.rs`), so the read
/// after the lost answer is rewritten to what RDS would say. The two reads
/// before the promotion (the replica, then its source) pass untouched.
#[tokio::test]
async fn promotion_whose_answer_is_lost_is_not_sent_again() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let primary = world::unique("fault-src");
    let replica = world::unique("fault-rep");
    world::create_primary(HOME, &primary).await;
    create_replica(&replica, &primary).await;
    let promote = Match::Action("PromoteReadReplica");
    proxy.inject(promote.clone(), Fault::DropAfterForward, 1);
    proxy.inject(DESCRIBE_DB, Fault::Delay(Duration::ZERO), 2);
    proxy.inject(
        DESCRIBE_DB,
        Fault::Rewrite {
            from: "<DBInstanceStatus>available</DBInstanceStatus>".into(),
            to: "<DBInstanceStatus>modifying</DBInstanceStatus>".into(),
        },
        1,
    );

    clouds
        .database
        .promote_replica(HOME, &replica)
        .await
        .expect("the lost answer is recovered by reading the instance");
    assert_eq!(proxy.requests(promote.clone()), 1, "{:#?}", proxy.log());
    assert_eq!(proxy.forwarded(promote), 1, "promoted exactly once");
    assert_eq!(proxy.unspent(), 0, "{:#?}", proxy.log());
    let after = clouds
        .database
        .describe_instance(HOME, &replica)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(after.role, DbRole::Primary, "{after:?}");
}

/// The placement of a new replica reaches RDS: the key of the replica's
/// region (an encrypted source's key cannot leave its region), the security
/// groups of the old primary's network, multi-AZ, the class. moto ignores
/// most of them, so the request itself is what is checked; the subnet group,
/// which moto does check, is shown by its refusal of one that does not exist.
#[tokio::test]
async fn replica_placement_is_sent_with_the_create() {
    crate::needs_emulators!();
    let (proxy, clouds) = proxied(|s| &mut s.rds_endpoint).await;
    let primary = world::unique("fault-src");
    let replica = world::unique("fault-placed");
    let source_arn = world::create_primary(HOME, &primary).await;
    let placement = ReplicaPlacement {
        instance_class: Some("db.t3.small".into()),
        kms_key_id: Some("alias/drctl-rds".into()),
        subnet_group: None,
        security_groups: vec!["sg-0abc".into(), "sg-0def".into()],
        multi_az: Some(true),
        ..Default::default()
    };
    clouds
        .database
        .create_replica(HOME, &replica, &source_arn, &placement)
        .await
        .expect("create");
    for part in [
        "DBInstanceClass=db.t3.small",
        "KmsKeyId=alias%2Fdrctl-rds",
        "VpcSecurityGroupIds.VpcSecurityGroupId.1=sg-0abc",
        "VpcSecurityGroupIds.VpcSecurityGroupId.2=sg-0def",
        "MultiAZ=true",
    ] {
        assert_eq!(
            proxy.forwarded(Match::BodyContains(part.into())),
            1,
            "{part} in the create: {:#?}",
            proxy.log()
        );
    }
    let inst = clouds
        .database
        .describe_instance(HOME, &replica)
        .await
        .unwrap()
        .expect("created");
    assert_eq!(inst.instance_class.as_deref(), Some("db.t3.small"));

    let missing = ReplicaPlacement {
        subnet_group: Some(world::unique("no-such-net")),
        ..placement
    };
    let err = clouds
        .database
        .create_replica(HOME, &world::unique("fault-placed"), &source_arn, &missing)
        .await
        .expect_err("an unknown subnet group is refused");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(
        err.code.as_deref(),
        Some("DBSubnetGroupNotFoundFault"),
        "{err}"
    );
}

/// Regression (`lost_change_answer_read_as_another_run`): a failover whose
/// `ChangeResourceRecordSets` reached Route 53 and took effect, but whose
/// answer was lost on the way back. The adapter sends the batch again;
/// Route 53 refuses the resend (its DELETE names the value the first send
/// replaced; LocalStack refuses its CREATE of a set that exists), and the
/// step used to read that refusal as "another run switched it" and fail
/// the run. Now the step reads the records back, finds them as wanted, and
/// the run succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn regression_lost_change_answer_read_as_another_run() {
    crate::needs_emulators!();
    let fx = crate::fixture::Fixture::new("lostans").await;
    let proxied = crate::fixture::Proxied::start(false).await;
    let route53 = proxied.proxy_for("AWS_ENDPOINT_URL_ROUTE_53");
    let change = Match::MethodPath("POST", "/rrset".into());
    route53.inject(change.clone(), Fault::DropAfterForward, 1);

    let o = fx
        .failover_payments_via(&proxied.endpoints(), &["--output", "json"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report = o.json();
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert!(!o.all().contains("another run switched it"), "{}", o.all());
    assert_eq!(
        route53.requests(change.clone()),
        2,
        "sent, its answer lost, sent again: {:#?}",
        route53.log()
    );
    assert_eq!(route53.unspent(), 0);
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();

    // The step's output says that its answer was lost and read back.
    let run = report["run_id"].as_str().expect("run id");
    let show = fx.show(run).await;
    let out = crate::fixture::outputs(&show, &fx.step("switch-dns"));
    assert_eq!(out["answers_lost"], 1, "{out:#}");
    assert_eq!(out["changed"], 2, "{out:#}");
    let v = fx.audit(run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());
}
