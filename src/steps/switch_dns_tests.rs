//! `switch-dns` and `verify-dns` over a Cloud DNS managed zone, through the
//! traffic role (the Route 53 side is tested beside the step and in
//! `fencing_tests`): the choice, one change for the zone's records, the
//! wait, the read-back, a refusal judged by a read, a resumed run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::records::SwitchDnsOutput;
use super::records::swaps;
use super::verify_dns::VerifyDnsOutput;
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::metered::Metered;
use crate::cloud::{CloudRecordSet, Clouds, DnsRecord};
use crate::plan::kinds::traffic::switching;

const P: &str = "drctl-emu";
const Z: &str = "orders-zone";
const SUBJECT: &str = "drctl-emu/orders-zone";
const NAME: &str = "orders.gcp.example.com.";
const ADMIN: &str = "admin.gcp.example.com.";
const HOME: &str = "orders-api-usc1.example.com.";
const TARGET: &str = "orders-api-use4.example.com.";

fn rs(name: &str, value: &str, ttl: i64) -> CloudRecordSet {
    CloudRecordSet {
        name: name.into(),
        rtype: "CNAME".into(),
        ttl,
        rrdatas: vec![value.into()],
        routed: false,
        primary_backup: None,
    }
}

fn plan() -> crate::plan::Plan {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans.into_iter().next().expect("orders-gcp")
}

/// orders-gcp with a second record in the same managed zone.
fn two_records() -> crate::plan::Plan {
    let mut plan = plan();
    let mut admin = plan.spec.cloud_dns[0].clone();
    admin.id = "admin-dns".into();
    admin.name = ADMIN.into();
    plan.spec.cloud_dns.push(admin);
    plan
}

fn world() -> FakeCloud {
    let f = FakeCloud::new();
    f.add_cloud_zone(P, Z, "gcp.example.com.");
    f.put_cloud_record(P, Z, rs(NAME, HOME, 60));
    f.put_cloud_record(P, Z, rs(ADMIN, HOME, 60));
    f
}

/// A failover's context, at the pace of a test.
fn at<'a>(
    clouds: &'a Clouds,
    plan: &'a crate::plan::Plan,
    outputs: &'a BTreeMap<String, Value>,
    steps: &'a [crate::steps::graph::Step],
) -> Cx<'a> {
    Cx {
        run_id: "20261125T070000Z-orders-gcp-r1",
        deadline: Instant::now() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Cx::for_test(clouds, plan, "us-east4", outputs, steps)
    }
}

/// Runs the failover's `switch-dns` of the managed zone, then (when it
/// succeeded) its `verify-dns`, with the switch's output journaled.
async fn run_both(
    clouds: &Clouds,
    plan: &crate::plan::Plan,
) -> Result<(SwitchDnsOutput, VerifyDnsOutput), StepFailure> {
    let g = crate::steps::graph::compile(plan, "us-east4").expect("graph");
    let step = |kind: KindName| {
        let s = (g.steps.iter())
            .find(|s| s.kind.name() == kind)
            .unwrap_or_else(|| panic!("a {kind} step"));
        assert_eq!(s.id.subject.as_deref(), Some(SUBJECT), "{}", s.id);
        s.kind.clone()
    };
    let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
    let v = (step(KindName::SwitchDns).action())
        .run(&at(clouds, plan, &outputs, &g.steps))
        .await?;
    let switched = SwitchDnsOutput::read(&v).expect("its outputs");
    let id = StepId::new(plan.name(), KindName::SwitchDns, Some(SUBJECT.into()));
    outputs.insert(id.to_string(), v);
    let v = (step(KindName::VerifyDns).action())
        .run(&at(clouds, plan, &outputs, &g.steps))
        .await?;
    Ok((switched, VerifyDnsOutput::read(&v).expect("its outputs")))
}

#[test]
fn a_record_at_the_target_is_left_alone_else_swapped_as_read_and_a_policy_refused() {
    let plan = plan();
    let d = switching(&plan).next().expect("orders-dns");
    let want = d.wanted(&plan, "us-east4", None);
    assert_eq!(want.len(), 1);
    let simple = |v: &str, ttl| {
        Some(DnsRecord::simple(
            NAME.into(),
            "CNAME",
            Some(ttl),
            vec![v.into()],
        ))
    };
    assert!(swaps(&want, &[simple("ORDERS-API-USE4.example.com", 60)]).is_empty());
    assert_eq!(
        swaps(&want, &[simple(HOME, 60)]),
        [(simple(HOME, 60), want[0].clone())]
    );
    // The target's value under another TTL is swapped too.
    assert_eq!(swaps(&want, &[simple(TARGET, 300)]).len(), 1);
    assert_eq!(swaps(&want, &[None]), [(None, want[0].clone())]);
    let routed = DnsRecord {
        routing: Some(crate::cloud::Routing::default()),
        ..want[0].clone()
    };
    let api = d.zone().api;
    assert!(
        api.refuses(&routed)
            .is_some_and(|w| w.contains("routing policy"))
    );
    assert_eq!(api.refuses(&want[0]), None);
}

/// `status`'s readiness says only what its row of the record (read
/// through the traffic role) cannot: a routing policy a records-mode
/// switch does not replace. A plain record, or a missing one, is the row's
/// to show, not said twice.
#[tokio::test]
async fn status_hears_of_the_record_from_the_step_only_for_a_routing_policy() {
    let plan = plan();
    let plan = &plan;
    let said = |f: FakeCloud| async move {
        let clouds = f.clouds();
        let all = crate::steps::readiness(&clouds, plan, "us-east4", Duration::from_secs(5));
        (all.await.into_iter())
            .filter(|x| x.resource.starts_with("record"))
            .map(|x| x.state)
            .collect::<Vec<_>>()
    };
    assert_eq!(said(world()).await, Vec::<String>::new());
    let missing = FakeCloud::new();
    missing.add_cloud_zone(P, Z, "gcp.example.com.");
    assert_eq!(said(missing).await, Vec::<String>::new());
    let routed = FakeCloud::new();
    routed.add_cloud_zone(P, Z, "gcp.example.com.");
    routed.put_cloud_record(
        P,
        Z,
        CloudRecordSet {
            routed: true,
            ..rs(NAME, HOME, 60)
        },
    );
    assert_eq!(said(routed).await, ["routing policy"]);
}

/// Switched: one change (deleting the record as read), polled to done by
/// the verification, read back; run again, nothing is sent.
#[tokio::test]
async fn the_record_is_swapped_in_one_change_waited_on_and_read_back() {
    let f = world();
    let (clouds, log) = Metered::wrap(f.clouds());
    let plan = plan();
    let (out, verified) = run_both(&clouds, &plan).await.expect("switched");
    assert_eq!(out.changed, 1, "{out:?}");
    assert_eq!(
        out.before[0].as_ref().map(|r| r.values.clone()),
        Some(vec![HOME.to_string()])
    );
    assert_eq!(out.after[0].values, [TARGET]);
    assert_eq!(out.change_ids.len(), 1, "{out:?}");
    assert_eq!(verified.change_ids, out.change_ids);
    assert_eq!(
        f.cloud_record(P, Z, NAME, "CNAME"),
        Some(rs(NAME, TARGET, 60))
    );
    let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
    let n = |l: &str| labels.iter().filter(|x| **x == l).count();
    assert_eq!(n("clouddns:changes.create"), 1, "{labels:?}");
    assert!(n("clouddns:changes.get") >= 1, "{labels:?}");

    let (again, _) = run_both(&clouds, &plan).await.expect("already switched");
    assert!(
        again.changed == 0 && again.change_ids.is_empty(),
        "{again:?}"
    );
    assert_eq!(f.state().writes, [format!("changes.create {NAME}")]);
}

/// Regression: a plan's two records-mode Cloud DNS records of one managed
/// zone were switched by two steps, one change each, so clients could see
/// half a switch (one name moved, the other not) and a failure between
/// them left it so. They now go in one atomic change, as Route 53's do.
#[tokio::test]
async fn regression_two_cloud_dns_records_of_one_zone_were_switched_in_two_changes() {
    let f = world();
    let (clouds, log) = Metered::wrap(f.clouds());
    let plan = two_records();
    let g = crate::steps::graph::compile(&plan, "us-east4").expect("graph");
    let switches: Vec<&str> = (g.steps.iter())
        .filter(|s| s.kind.name() == KindName::SwitchDns)
        .map(|s| s.id.subject.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(switches, [SUBJECT], "one switch for the zone");
    let (out, _) = run_both(&clouds, &plan).await.expect("switched");
    assert_eq!(out.changed, 2, "{out:?}");
    let creates = (log.calls().iter())
        .filter(|c| c.label == "clouddns:changes.create")
        .count();
    assert_eq!(creates, 1, "one change for both records");
    for name in [NAME, ADMIN] {
        assert_eq!(
            f.cloud_record(P, Z, name, "CNAME"),
            Some(rs(name, TARGET, 60))
        );
    }
    // Another writer moves one of the two before the change: neither moves.
    let f = world();
    f.race_cloud_record(P, Z, rs(ADMIN, "someone-else.example.com.", 60));
    run_both(&f.clouds(), &plan)
        .await
        .expect_err("refused whole");
    assert_eq!(
        f.cloud_record(P, Z, NAME, "CNAME"),
        Some(rs(NAME, HOME, 60))
    );
}

/// The record switched to the target by a change still pending (as a
/// crashed attempt's would be): its id.
async fn change_on_its_way(c: &Clouds) -> String {
    (c.cloud_dns)
        .swap_record_sets(P, Z, &[(Some(rs(NAME, HOME, 60)), rs(NAME, TARGET, 60))])
        .await
        .expect("a change on its way")
        .id
}

/// A resumed run (the change sent before a crash, still pending) finds
/// the record switched and waits on the change, sending none.
#[tokio::test]
async fn a_resumed_run_waits_on_its_pending_change_and_sends_none() {
    let f = world();
    let c = f.clouds();
    let first = change_on_its_way(&c).await;
    let plan = plan();
    let (out, verified) = run_both(&c, &plan).await.expect("waited");
    assert_eq!(out.changed, 0, "{out:?}");
    assert_eq!(out.pending, std::slice::from_ref(&first));
    assert_eq!(verified.change_ids, [first]);
    assert_eq!(f.state().writes.len(), 1);
    let (again, _) = run_both(&c, &plan).await.expect("nothing pending now");
    assert!(again.pending.is_empty(), "{again:?}");
}

/// Where this run's own change may be on its way with no id (a resumed
/// attempt, or a lost answer), Cloud DNS lists the zone's pending changes
/// for `verify-dns` to wait on; Route 53 cannot, and the switch's output
/// says its change goes unseen (the RTO's basis then says so). A change
/// that cannot be this run's is never said unseen.
#[tokio::test]
async fn a_change_with_no_id_is_waited_on_where_listed_and_said_unseen_where_not() {
    use crate::plan::kinds::traffic::Zone;
    use crate::plan::spec::ResourceKind;
    let f = world();
    let c = f.clouds();
    let pending = change_on_its_way(&c).await;
    let plan = plan();
    let outputs = BTreeMap::new();
    let cx = at(&c, &plan, &outputs, &[]);
    let route53 = Zone::of(ResourceKind::Dns, "", "example.com.").expect("Route 53 zones");
    let cloud_dns = Zone::of(ResourceKind::CloudDns, P, Z).expect("Cloud DNS zones");
    for own in [false, true] {
        let mut out = SwitchDnsOutput::default();
        super::switch_dns::unseen(&cx, route53, &mut out, own).await;
        assert_eq!((out.unconfirmed, out.pending.len()), (own, 0), "{out:?}");
        let mut out = SwitchDnsOutput::default();
        super::switch_dns::unseen(&cx, cloud_dns, &mut out, own).await;
        assert!(!out.unconfirmed, "{out:?}");
        assert_eq!(out.pending, std::slice::from_ref(&pending));
    }
}

/// Another writer between the read and the change: Cloud DNS refuses the
/// change, the step reads again and fails naming record, zone and
/// project; the other writer's value stands.
#[tokio::test]
async fn a_record_changed_after_the_read_is_refused_not_overwritten() {
    let f = world();
    f.race_cloud_record(P, Z, rs(NAME, "someone-else.example.com.", 60));
    let e = run_both(&f.clouds(), &plan()).await.expect_err("refused");
    let text = e.to_string();
    assert!(
        matches!(e, StepFailure::State { .. })
            && [
                NAME,
                SUBJECT,
                "someone-else.example.com.",
                "nothing was overwritten"
            ]
            .iter()
            .all(|w| text.contains(w)),
        "{text}"
    );
    assert_eq!(
        f.cloud_record(P, Z, NAME, "CNAME"),
        Some(rs(NAME, "someone-else.example.com.", 60))
    );
    assert!(f.state().writes.is_empty());
}

/// A refusal whose record already holds the target's value (the run's own
/// change, its answer lost) ends the switch as done.
#[tokio::test]
async fn a_refusal_of_a_record_already_switched_is_done() {
    let f = world();
    f.race_cloud_record(P, Z, rs(NAME, TARGET, 60));
    let (out, _) = run_both(&f.clouds(), &plan())
        .await
        .expect("found switched");
    assert_eq!(out.answers_lost, 1, "{out:?}");
}

/// A record set with a routing policy is refused before any change, naming
/// the policy and how to read it.
#[tokio::test]
async fn a_record_with_a_routing_policy_is_refused_before_any_change() {
    let f = world();
    f.put_cloud_record(
        P,
        Z,
        CloudRecordSet {
            routed: true,
            ..rs(NAME, HOME, 60)
        },
    );
    let e = run_both(&f.clouds(), &plan()).await.expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("routing policy") && text.contains(NAME),
        "{text}"
    );
    assert!(f.state().writes.is_empty());
}

/// Regression: a record with no value for the target (a plan edited past
/// validation) was refused by the switch, but a drill sent its empty copy
/// to the provider. Every step that writes the records, and its preview,
/// now fails naming it before any change.
#[tokio::test]
async fn regression_a_drill_sent_a_record_with_no_value_for_the_target() {
    use crate::steps::graph::{DrillDepth, RunMode};
    let f = world();
    let mut plan = two_records();
    plan.spec.cloud_dns[1].targets.shift_remove("us-east4");
    let e = run_both(&f.clouds(), &plan).await.expect_err("no value");
    let named = |e: &StepFailure| {
        let text = e.to_string();
        assert!(
            text.contains(ADMIN) && text.contains("has no value for us-east4"),
            "{text}"
        );
    };
    named(&e);
    let shadow = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    let g = crate::steps::graph::compile_mode(&plan, "us-east4", &shadow).expect("graph");
    let step = (g.steps.iter())
        .find(|s| s.kind.name() == KindName::DrillDns)
        .expect("a drill-dns step");
    let outputs = BTreeMap::new();
    let clouds = f.clouds();
    let cx = at(&clouds, &plan, &outputs, &g.steps);
    named(&step.kind.action().run(&cx).await.expect_err("no value"));
    named(&step.kind.action().preview(&cx).await.expect_err("no value"));
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
}

#[tokio::test]
async fn a_missing_zone_is_an_error_naming_it() {
    let f = FakeCloud::new();
    let e = run_both(&f.clouds(), &plan()).await.expect_err("no zone");
    assert!(e.to_string().contains(Z), "{e}");
}

/// A shadow drill of two records of one managed zone: both drill records
/// made in one change, journaled first (as a `record` of the zone's kind),
/// in effect and read back; each removed by the one cleanup every kind
/// goes through, production's record sets untouched.
#[tokio::test]
async fn a_drill_makes_a_zones_drill_records_in_one_change_and_its_cleanup_removes_them() {
    use crate::steps::graph::{DrillDepth, RunMode};
    let f = world();
    let (clouds, log) = Metered::wrap(f.clouds());
    let plan = two_records();
    let shadow = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    let g = crate::steps::graph::compile_mode(&plan, "us-east4", &shadow).expect("graph");
    let step = (g.steps.iter())
        .find(|s| s.kind.name() == KindName::DrillDns)
        .expect("a drill-dns step");
    assert_eq!(step.id.subject.as_deref(), Some(SUBJECT));
    let outputs = BTreeMap::new();
    let cx = at(&clouds, &plan, &outputs, &g.steps);
    let temps = step.kind.action().creates(cx.run_id);
    let names: Vec<String> = [NAME, ADMIN]
        .iter()
        .map(|n| crate::steps::drill_names::record_name(cx.run_id, n))
        .collect();
    let made: Vec<(crate::plan::spec::ResourceKind, String)> = (temps.iter())
        .filter_map(|t| t.drill_record())
        .map(|(kind, project, zone, name, _)| {
            assert_eq!((project, zone), (P, Z));
            (kind, name.to_string())
        })
        .collect();
    let cloud_dns = crate::plan::spec::ResourceKind::CloudDns;
    assert_eq!(
        made,
        names
            .iter()
            .map(|n| (cloud_dns, n.clone()))
            .collect::<Vec<_>>()
    );
    let v = step.kind.action().run(&cx).await.expect("drilled");
    let out = crate::steps::DrillDnsOutput::read(&v).expect("its output");
    assert_eq!(out.records.len(), 2, "{out:?}");
    let creates = (log.calls().iter())
        .filter(|c| c.label == "clouddns:changes.create")
        .count();
    assert_eq!(creates, 1, "one change for the zone's drill records");
    for n in &names {
        assert_eq!(f.cloud_record(P, Z, n, "CNAME"), Some(rs(n, TARGET, 60)));
    }
    let z = crate::plan::kinds::traffic::Zone::of(cloud_dns, P, Z).expect("zones");
    let poll = (Duration::from_millis(1), Duration::from_millis(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in &names {
        let (result, said) = super::drill_dns::remove(&clouds, z, (n, "CNAME"), poll, deadline)
            .await
            .expect("removed");
        assert_eq!(result, crate::journal::CleanupResult::Removed, "{said}");
        assert_eq!(f.cloud_record(P, Z, n, "CNAME"), None);
    }
    // Production's names are never a drill's: refused, untouched.
    let (result, _) = super::drill_dns::remove(&clouds, z, (NAME, "CNAME"), poll, deadline)
        .await
        .expect("read");
    assert_eq!(result, crate::journal::CleanupResult::NotOurs);
    assert_eq!(
        f.cloud_record(P, Z, NAME, "CNAME"),
        Some(rs(NAME, HOME, 60))
    );
}
