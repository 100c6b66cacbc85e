//! Stale actors cannot write: the fence a step asks before each cloud write
//! ([`Cx::fenced`]), and the compare-and-swap record changes of `switch-dns`,
//! on the in-memory fake (paused time: leases expire without waiting).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::records::submit_swaps;
use super::records::swaps;
use super::*;
use crate::cloud::dns_batch::batches;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{DnsChange, DnsRecord, ObjectUrl};
use crate::journal::{MemoryStore, RunKind};
use crate::plan::kinds::traffic::ZoneFound;
use crate::state::clock::TokioClock;
use crate::state::lease::LeaseLocks;
use crate::state::{Holder, LeaseTimes, LockSet, LockStore, Takeover};

fn payments() -> Plan {
    crate::plan::reference()
        .into_iter()
        .find(|p| p.name() == "payments")
        .expect("payments")
}

/// Leases of 1 s (skew 100 ms) on the fake's bucket, on tokio's clock.
fn leases(fake: &FakeCloud) -> LeaseLocks {
    fake.state().buckets.push("s3://state".into());
    LeaseLocks::new(
        Arc::new(fake.clone()),
        "us-east-1",
        ObjectUrl::parse("s3://state/team").expect("url"),
        LeaseTimes {
            length: Duration::from_millis(1_000),
            skew: Duration::from_millis(100),
        },
    )
    .with_clock(Arc::new(TokioClock::default()))
}

/// Runs `f` with a step context of the payments plan failing over to
/// us-east-1, fenced by `fence`.
async fn with_cx<T>(
    fake: &FakeCloud,
    fence: Option<Arc<dyn crate::journal::Fence>>,
    f: impl AsyncFnOnce(&Cx<'_>) -> T,
) -> T {
    let clouds = fake.clouds();
    let plan = payments();
    let outputs = BTreeMap::new();
    let g = crate::steps::graph::compile(&plan, "us-east-1").expect("graph");
    let cx = Cx {
        run_id: "20261123T100000Z-payments-fe01",
        deadline: Instant::now() + Duration::from_secs(30),
        poll: (Duration::from_millis(1), Duration::from_millis(5)),
        journal: Arc::new(MemoryStore::new()),
        attempt: 2,
        fence,
        ..Cx::for_test(&clouds, &plan, "us-east-1", &outputs, &g.steps)
    };
    f(&cx).await
}

fn step_of(plan: &Plan, kind: KindName) -> graph::Step {
    crate::steps::graph::compile(plan, "us-east-1")
        .expect("graph")
        .steps
        .into_iter()
        .find(|s| s.kind.name() == kind)
        .expect("a step of the kind")
}

/// A's fence after A slept (no renewal) past its lease and B took the
/// plan over (B's hold, kept by the caller): every write asked under A's
/// fence must be refused.
async fn fence_taken_over(fake: &FakeCloud) -> (Arc<dyn crate::journal::Fence>, impl Sized) {
    let l = leases(fake);
    let a = l
        .acquire(
            "payments",
            &Holder::current("run-a", RunKind::Failover),
            Takeover::default(),
        )
        .await
        .expect("A takes the lease");
    let fence: Arc<dyn crate::journal::Fence> = Arc::new(LockSet(vec![a.lock.clone()]));
    // While the lease is ours, the helper gives the plan's token.
    let token = with_cx(fake, Some(fence.clone()), async |cx| {
        cx.fenced("a write", "us-east-1").await
    })
    .await
    .expect("held");
    assert_eq!(token, a.lock.token());

    // A sleeps (no renewal) past its lease; B takes the plan over.
    a.lock.abandon();
    tokio::time::advance(Duration::from_millis(1_200)).await;
    let b = l
        .acquire(
            "payments",
            &Holder::current("run-a", RunKind::Failover),
            Takeover {
                reclaim_run: Some("run-a"),
                ..Default::default()
            },
        )
        .await
        .expect("B resumes the run");
    assert!(b.lock.token() > a.lock.token());
    (fence, b)
}

#[tokio::test(start_paused = true)]
async fn a_step_whose_lease_was_taken_over_while_it_slept_makes_no_cloud_write() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let (fence, _b) = fence_taken_over(&fake).await;

    // A wakes inside its scale step: the group needs scaling, but the
    // fence refuses before the write.
    let writes = fake.state().writes.len();
    let scale = step_of(&payments(), KindName::Raise);
    let err = with_cx(&fake, Some(fence), async |cx| {
        scale.kind.action().run(cx).await
    })
    .await
    .expect_err("fenced");
    assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("lease lost: autoscaling:UpdateAutoScalingGroup of payments-api-use1 (us-east-1) was not sent, and this process made no change"),
        "{text}"
    );
    assert_eq!(
        fake.state().writes.len(),
        writes,
        "{:?}",
        fake.state().writes
    );
}

#[tokio::test]
async fn without_leases_the_helper_lets_every_write_through_with_no_token() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let token = with_cx(&fake, None, async |cx| {
        cx.fenced("a write", "us-east-1").await
    })
    .await
    .expect("nothing to fence");
    assert_eq!(token, None);
}

fn cname(name: &str, value: &str) -> DnsRecord {
    DnsRecord::simple(name.into(), "CNAME", Some(60), vec![value.into()])
}

#[tokio::test]
async fn a_stale_swap_is_refused_whole_and_names_the_newer_value() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let clouds = fake.clouds();
    let z = clouds
        .dns
        .find_zone("example.com.")
        .await
        .expect("zone")
        .expect("zone");
    let home = cname("api.example.com.", "api-usw2.example.com.");
    let target = cname("api.example.com.", "api-use1.example.com.");
    // Writer 1 read the record at home; meanwhile another run moved it.
    let stale = swaps(std::slice::from_ref(&target), &[Some(home.clone())]);
    assert_eq!(stale, [(Some(home.clone()), target.clone())]);
    let newer = cname("api.example.com.", "api-elsewhere.example.com.");
    clouds
        .dns
        .apply_changes(&z, &DnsChange::swap(Some(&home), &newer), "newer run")
        .await
        .expect("the newer run's swap");
    let found = ZoneFound {
        handle: z.id.clone(),
        dns_name: z.name.clone(),
    };
    let zone = super::records::route53("example.com.");
    let err = with_cx(&fake, None, async |cx| {
        submit_swaps(cx, (zone, &found), &stale).await
    })
    .await
    .expect_err("stale");
    let text = err.to_string();
    assert!(
        text.starts_with("record api.example.com. CNAME in zone example.com. changed since it was read (read api-usw2.example.com. ttl 60, now api-elsewhere.example.com. ttl 60): another run or someone else switched it; nothing was overwritten"),
        "{text}"
    );
    // Nothing of the stale batch was applied.
    let now = clouds
        .dns
        .read_records(&z, "api.example.com.", "CNAME")
        .await
        .expect("read");
    assert_eq!(now, [newer]);
}

#[tokio::test]
async fn the_fake_refuses_a_delete_that_does_not_match_and_a_create_of_an_existing_set() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let dns = fake.clouds().dns;
    let z = dns.find_zone("example.com.").await.unwrap().unwrap();
    let api = cname("api.example.com.", "api-usw2.example.com.");
    let mut wrong_ttl = api.clone();
    wrong_ttl.ttl = Some(300);
    let fresh = cname("new.example.com.", "x.example.com.");
    // A good CREATE first, then a DELETE that does not match: neither lands.
    let e = dns
        .apply_changes(
            &z,
            &[
                DnsChange::Create(fresh.clone()),
                DnsChange::Delete(wrong_ttl),
            ],
            "",
        )
        .await
        .expect_err("values differ");
    assert_eq!(e.code.as_deref(), Some("InvalidChangeBatch"));
    assert!(e.message.contains("do not match"), "{e}");
    assert!(
        dns.read_records(&z, "new.example.com.", "CNAME")
            .await
            .unwrap()
            .is_empty()
    );
    let e = dns
        .apply_changes(&z, &[DnsChange::Create(api.clone())], "")
        .await
        .expect_err("exists");
    assert!(e.message.contains("already exists"), "{e}");
    // The exact DELETE and its CREATE go through together.
    let moved = cname("api.example.com.", "api-use1.example.com.");
    dns.apply_changes(&z, &DnsChange::swap(Some(&api), &moved), "")
        .await
        .expect("an exact swap");
    let now = dns
        .read_records(&z, "api.example.com.", "CNAME")
        .await
        .unwrap();
    assert_eq!(now, [moved]);
}

#[test]
fn a_delete_and_create_pair_is_never_split_across_batches() {
    let upsert = |i: usize| DnsChange::Upsert(cname(&format!("r{i}.example.com."), "x."));
    let sizes = |changes: &[DnsChange]| -> Vec<usize> {
        batches(changes).map(<[DnsChange]>::len).collect()
    };
    // 499 UPSERTs (998 records) and a pair (2): exactly 1,000, one batch.
    let mut changes: Vec<DnsChange> = (0..499).map(upsert).collect();
    changes.extend(DnsChange::swap(
        Some(&cname("a.example.com.", "old.")),
        &cname("a.example.com.", "new."),
    ));
    assert_eq!(sizes(&changes), [501]);
    // A lone CREATE first (999): the pair would make 1,001, so it opens
    // the next batch whole.
    let mut changes: Vec<DnsChange> = (0..499).map(upsert).collect();
    changes.push(DnsChange::Create(cname("b.example.com.", "new.")));
    changes.extend(DnsChange::swap(
        Some(&cname("a.example.com.", "old.")),
        &cname("a.example.com.", "new."),
    ));
    assert_eq!(sizes(&changes), [500, 2]);
    // 1,000 pairs: 500 per batch.
    let pairs: Vec<DnsChange> = (0..1_000)
        .flat_map(|i| {
            let n = format!("p{i}.example.com.");
            DnsChange::swap(Some(&cname(&n, "old.")), &cname(&n, "new."))
        })
        .collect();
    assert_eq!(sizes(&pairs), [1_000, 1_000]);
}

/// A fence whose store read says "ours", after which the local deadline has
/// passed: a process paused between its step's check and the call.
struct PausedAfterCheck {
    checked: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl crate::journal::Fence for PausedAfterCheck {
    async fn check(&self, _plan: Option<&str>) -> Result<BTreeMap<String, u64>, String> {
        self.checked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(BTreeMap::from([("payments".to_string(), 7)]))
    }

    fn check_local(&self) -> Result<(), String> {
        if self.checked.load(std::sync::atomic::Ordering::SeqCst) {
            Err("the lease of plan payments passed its local deadline".into())
        } else {
            Ok(())
        }
    }

    fn time_left(&self) -> Option<Duration> {
        None
    }
}

/// Runs `f` as the executor runs every step, inside its plan's wire
/// fence, under a fence whose lease is lost right after the step's own
/// check passes (a pause between the check and the call).
async fn paused_after_the_check<T>(fake: &FakeCloud, f: impl AsyncFnOnce(&Cx<'_>) -> T) -> T {
    let fence: Arc<dyn crate::journal::Fence> = Arc::new(PausedAfterCheck {
        checked: Default::default(),
    });
    let wire = {
        let fence = fence.clone();
        crate::cloud::wire::WireFence::new(move || fence.check_plan_local("payments"))
    };
    wire.guard(with_cx(fake, Some(fence), f)).await
}

#[tokio::test]
async fn regression_a_pause_between_the_fence_check_and_the_call_still_sent_it() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let writes = fake.state().writes.len();
    let scale = step_of(&payments(), KindName::Raise);
    let err = paused_after_the_check(&fake, async |cx| scale.kind.action().run(cx).await)
        .await
        .expect_err("refused at the wire");
    // The step's own check passed; the call was refused right before it
    // would have been sent.
    assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("autoscaling:UpdateAutoScalingGroup of payments-api-use1"),
        "{err}"
    );
    assert_eq!(
        fake.state().writes.len(),
        writes,
        "{:?}",
        fake.state().writes
    );
}

/// A reprotection of each kind the data role reprotects, each with a
/// first write to make: the step, and that write's call (RDS: the old
/// primary renamed; Aurora: a missing secondary made; Cloud SQL: the DR
/// replica designated).
fn reprotections(fake: &FakeCloud) -> Vec<(super::reprotect::Reprotect, &'static str)> {
    use crate::plan::kinds::reprotecting::Guarded;
    use crate::plan::spec::ResourceKind;
    fake.add_primary("us-east-1", "fence-rp");
    fake.add_primary("us-west-2", "fence-rp-usw2");
    fake.add_global("fence-rg", &[("us-east-1", "fence-rg-use1")]);
    fake.add_sql("drctl-emu", "us-east4", "sql-use4", None, false);
    fake.add_sql("drctl-emu", "us-central1", "sql", Some("sql-use4"), false);
    let step = |of, primary: (&str, &str), other: (&str, &str), dr| super::reprotect::Reprotect {
        resource: "db".into(),
        of,
        guarded: Guarded {
            primary: (primary.0.into(), primary.1.into()),
            others: vec![(other.0.into(), other.1.into())],
            dr,
            keys: Default::default(),
        },
    };
    vec![
        (
            step(
                ResourceKind::Database,
                ("us-east-1", "fence-rp"),
                ("us-west-2", "fence-rp-usw2"),
                false,
            ),
            "rds:ModifyDBInstance",
        ),
        (
            step(
                ResourceKind::GlobalDatabase,
                ("us-east-1", "fence-rg/fence-rg-use1"),
                ("eu-west-1", "fence-rg/fence-rg-euw1"),
                false,
            ),
            "rds:CreateDBCluster",
        ),
        (
            step(
                ResourceKind::CloudSql,
                ("us-east4", "drctl-emu/sql-use4"),
                ("us-central1", "drctl-emu/sql"),
                true,
            ),
            "sqladmin:instances.patch",
        ),
    ]
}

/// A reprotection whose lease was taken over while it slept writes
/// nothing, through any kind's data role: each is refused at its own
/// fence, naming the call; no Cloud SQL replica is designated.
#[tokio::test(start_paused = true)]
async fn a_reprotection_whose_lease_was_taken_over_writes_nothing_through_the_data_role() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_its_fence(&fake, actions(reprotections(&fake))).await;
    assert!(
        !(fake.state().sql.values()).any(|i| i.dr_replica),
        "no replica was designated"
    );
}

/// The same reprotections paused between their own fence check and the
/// call: each call is refused at the wire, right before it would be sent.
#[tokio::test]
async fn a_reprotection_paused_after_its_fence_check_is_refused_at_the_wire() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_the_wire(&fake, actions(reprotections(&fake))).await;
}

/// The orders workers' standby ECS service, as `raise` addresses it, with
/// a dead drill's marks on it (the first write a failover makes there is
/// taking them off).
fn marked_standby_service(fake: &FakeCloud) -> super::raise::Raise {
    let marks = super::drill_names::tags(
        "20261123T090000Z-orders-dead",
        "gone/pid 1",
        chrono::Utc::now(),
    );
    let group = ("us-east-1", "orders-ecs-use1/orders-workers");
    (fake.with_scaled("ecs_service", group.0, group.1, |svc| {
        svc.marks.extend(marks)
    }))
    .expect("the reference world's service");
    super::raise::Raise(super::capacity::Raising {
        resource: "orders-workers".into(),
        of: crate::plan::spec::ResourceKind::EcsService,
        group: "orders-ecs-use1/orders-workers".into(),
        region: "us-east-1".into(),
        size: crate::cloud::Size::Count(4),
        elsewhere: Vec::new(),
        ignore_targets: false,
    })
}

/// The generic capacity step under a lease B took over: A's `raise`
/// neither takes a drill's marks off nor sets the desired count.
#[tokio::test(start_paused = true)]
async fn a_raise_whose_lease_was_taken_over_makes_no_write_through_the_capacity_role() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let raise = marked_standby_service(&fake);
    let (fence, _b) = fence_taken_over(&fake).await;
    let writes = fake.state().writes.len();
    let err = with_cx(&fake, Some(fence), async |cx| raise.run(cx).await)
        .await
        .expect_err("fenced");
    assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("ecs:UntagResource of orders-ecs-use1/orders-workers"),
        "{err}"
    );
    let s = fake.state();
    assert_eq!(s.writes.len(), writes, "{:?}", s.writes);
    let svc = &s.scaled[&(
        "ecs_service",
        "us-east-1".into(),
        "orders-ecs-use1/orders-workers".into(),
    )];
    assert_eq!(svc.size, crate::cloud::Size::Count(1));
    assert!(svc.marks.contains_key(super::drill_names::RUN_TAG));
}

/// The same step paused between its own fence check and the call: the
/// call is refused at the wire, right before it would be sent.
#[tokio::test]
async fn a_raise_paused_after_its_fence_check_is_refused_at_the_wire() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let raise = marked_standby_service(&fake);
    let writes = fake.state().writes.len();
    let err = paused_after_the_check(&fake, async |cx| raise.run(cx).await)
        .await
        .expect_err("refused at the wire");
    assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
    assert_eq!(
        fake.state().writes.len(),
        writes,
        "{:?}",
        fake.state().writes
    );
}

/// A point-in-time restore through the data role, for both kinds it
/// covers (an RDS instance, a Cloud SQL clone), whose lease was taken over
/// while it slept: the restore is never asked for.
#[tokio::test(start_paused = true)]
async fn a_restore_whose_lease_was_taken_over_asks_for_no_copy_through_the_data_role() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    fake.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
    fake.add_primary("us-east-1", "restore-src");
    let (fence, _b) = fence_taken_over(&fake).await;
    let writes = fake.state().writes.len();
    for (of, instance, region, call) in [
        (
            crate::plan::kinds::ResourceKind::Database,
            "restore-src",
            "us-east-1",
            "rds:RestoreDBInstanceToPointInTime",
        ),
        (
            crate::plan::kinds::ResourceKind::CloudSql,
            "drctl-emu/orders-sql",
            "us-central1",
            "sqladmin:instances.clone",
        ),
    ] {
        let restore = super::restore::Restore {
            placement: Default::default(),
            resource: "db".into(),
            of,
            instance: instance.into(),
            region: region.into(),
            to_time: None,
        };
        let err = with_cx(&fake, Some(fence.clone()), async |cx| restore.run(cx).await)
            .await
            .expect_err("fenced");
        assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
        assert!(err.to_string().contains(call), "{err}");
    }
    let s = fake.state();
    assert_eq!(s.writes.len(), writes, "{:?}", s.writes);
    assert!(s.clone_points.is_empty());
}

/// The same restore paused between its own fence check and the call: the
/// call is refused at the wire, right before it would be sent.
#[tokio::test]
async fn a_restore_paused_after_its_fence_check_is_refused_at_the_wire() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    fake.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
    let restore = super::restore::Restore {
        placement: Default::default(),
        resource: "orders-sql".into(),
        of: crate::plan::kinds::ResourceKind::CloudSql,
        instance: "drctl-emu/orders-sql".into(),
        region: "us-central1".into(),
        to_time: None,
    };
    let writes = fake.state().writes.len();
    let err = paused_after_the_check(&fake, async |cx| restore.run(cx).await)
        .await
        .expect_err("refused at the wire");
    assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
    assert_eq!(
        fake.state().writes.len(),
        writes,
        "{:?}",
        fake.state().writes
    );
    assert!(fake.state().clone_points.is_empty());
}

/// The two kinds the data role promotes, each with a replica to promote:
/// the step, and the call its fence names.
fn promotions(fake: &FakeCloud) -> Vec<(super::promote::Promote, &'static str)> {
    fake.add_primary("us-east-1", "fence-db");
    fake.add_replica("us-west-2", "fence-db-usw2", ("us-east-1", "fence-db"));
    fake.set_lag("us-west-2", "fence-db-usw2", &[1.0]);
    fake.add_sql("drctl-emu", "us-central1", "fence-sql", None, false);
    fake.add_sql(
        "drctl-emu",
        "us-east4",
        "fence-sql-use4",
        Some("fence-sql"),
        false,
    );
    fake.set_lag("us-east4", "fence-sql-use4", &[1.0]);
    // A DR pair, switched over in a planned move.
    fake.add_sql("drctl-emu", "us-central1", "fence-dr", None, false);
    fake.add_sql(
        "drctl-emu",
        "us-east4",
        "fence-dr-use4",
        Some("fence-dr"),
        true,
    );
    fake.set_lag("us-east4", "fence-dr-use4", &[1.0]);
    let step = |of, instance: &str, region: &str| super::promote::Promote {
        resource: "db".into(),
        of,
        instance: instance.into(),
        region: region.into(),
        dr_replica: false,
        planned: false,
    };
    let planned_dr = super::promote::Promote {
        dr_replica: true,
        planned: true,
        ..step(
            crate::plan::kinds::ResourceKind::CloudSql,
            "drctl-emu/fence-dr-use4",
            "us-east4",
        )
    };
    use crate::plan::kinds::ResourceKind;
    vec![
        (
            step(ResourceKind::Database, "fence-db-usw2", "us-west-2"),
            "rds:PromoteReadReplica of fence-db-usw2",
        ),
        (
            step(
                ResourceKind::CloudSql,
                "drctl-emu/fence-sql-use4",
                "us-east4",
            ),
            "sqladmin:instances.promoteReplica of drctl-emu/fence-sql-use4",
        ),
        (
            planned_dr,
            "sqladmin:instances.switchover of drctl-emu/fence-dr-use4",
        ),
    ]
}

/// Each of `steps` (an action and the call its fence names), run under a
/// lease B took over while it slept: each is refused at its own fence,
/// naming the call, and nothing is written.
async fn each_refused_at_its_fence(fake: &FakeCloud, steps: Vec<(Box<dyn Action>, &str)>) {
    let (fence, _b) = fence_taken_over(fake).await;
    let writes = fake.state().writes.len();
    for (step, call) in steps {
        let err = with_cx(fake, Some(fence.clone()), async |cx| step.run(cx).await)
            .await
            .expect_err("fenced");
        assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
        assert!(err.to_string().contains(call), "{err}");
    }
    let s = fake.state();
    assert_eq!(s.writes.len(), writes, "{:?}", s.writes);
}

/// Each of `steps`, paused between its own fence check and the call: each
/// call is refused at the wire, right before it would be sent.
async fn each_refused_at_the_wire(fake: &FakeCloud, steps: Vec<(Box<dyn Action>, &str)>) {
    let writes = fake.state().writes.len();
    for (step, call) in steps {
        let err = paused_after_the_check(fake, async |cx| step.run(cx).await)
            .await
            .expect_err("refused at the wire");
        assert!(matches!(err, StepFailure::Fenced { .. }), "{err}");
        let (_, what) = call.split_once(':').expect("service:operation");
        let operation = what.split(' ').next().unwrap_or_default();
        assert!(err.to_string().contains(operation), "{call}: {err}");
    }
    let s = fake.state();
    assert_eq!(s.writes.len(), writes, "{:?}", s.writes);
}

/// The steps of `steps` as actions.
fn actions<A: Action + 'static>(
    steps: Vec<(A, &'static str)>,
) -> Vec<(Box<dyn Action>, &'static str)> {
    (steps.into_iter())
        .map(|(a, call)| (Box::new(a) as Box<dyn Action>, call))
        .collect()
}

/// A promotion through the data role, for both kinds it covers, whose
/// lease was taken over while it slept: nothing is promoted.
#[tokio::test(start_paused = true)]
async fn a_promotion_whose_lease_was_taken_over_promotes_nothing_through_the_data_role() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_its_fence(&fake, actions(promotions(&fake))).await;
}

/// The same promotions paused between their own fence check and the call:
/// each call is refused at the wire, right before it would be sent.
#[tokio::test]
async fn a_promotion_paused_after_its_fence_check_is_refused_at_the_wire() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_the_wire(&fake, actions(promotions(&fake))).await;
}

/// A drill copy of each kind the data role drills, each with a source to
/// copy: the step, and the call that makes the copy (its first write).
fn drill_copies(fake: &FakeCloud) -> Vec<(super::drill_copy::DrillCopy, &'static str)> {
    use crate::plan::kinds::ResourceKind;
    fake.add_primary("us-east-1", "fence-db");
    fake.add_replica("us-west-2", "fence-db-usw2", ("us-east-1", "fence-db"));
    fake.add_sql("drctl-emu", "us-central1", "fence-sql", None, false);
    fake.add_sql(
        "drctl-emu",
        "us-east4",
        "fence-sql-use4",
        Some("fence-sql"),
        false,
    );
    fake.add_global(
        "fence-global",
        &[("us-east-1", "fence-g-use1"), ("us-west-2", "fence-g-usw2")],
    );
    fake.set_lag("us-west-2", "fence-g-usw2", &[1.0]);
    let step = |of, (home_region, home): (&str, &str), (region, standby): (&str, &str)| {
        super::drill_copy::DrillCopy {
            placement: Default::default(),
            resource: "db".into(),
            of,
            home_region: home_region.into(),
            home: home.into(),
            region: region.into(),
            standby: standby.into(),
        }
    };
    let sql = ("drctl-emu/fence-sql", "drctl-emu/fence-sql-use4");
    vec![
        (
            step(
                ResourceKind::Database,
                ("us-east-1", "fence-db"),
                ("us-west-2", "fence-db-usw2"),
            ),
            "rds:CreateDBInstanceReadReplica",
        ),
        (
            step(
                ResourceKind::CloudSql,
                ("us-central1", sql.0),
                ("us-east4", sql.1),
            ),
            "sqladmin:instances.clone",
        ),
        (
            step(
                ResourceKind::GlobalDatabase,
                ("us-east-1", "fence-global/fence-g-use1"),
                ("us-west-2", "fence-global/fence-g-usw2"),
            ),
            "rds:RestoreDBClusterToPointInTime",
        ),
    ]
}

/// A drill whose lease was taken over makes no copy, through any kind's
/// data role: each is refused at its own fence, naming the call.
#[tokio::test(start_paused = true)]
async fn a_drill_copy_whose_lease_was_taken_over_makes_nothing_through_the_data_role() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_its_fence(&fake, actions(drill_copies(&fake))).await;
}

/// The same drill copies paused between their own fence check and the
/// call: each call is refused at the wire, right before it would be sent.
#[tokio::test]
async fn a_drill_copy_paused_after_its_fence_check_is_refused_at_the_wire() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    each_refused_at_the_wire(&fake, actions(drill_copies(&fake))).await;
}
