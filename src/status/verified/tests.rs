use super::*;
use crate::cloud::fake::FakeCloud;
use crate::journal::event::Outcome;
use crate::runs::drill::Verdict;
use crate::runs::schedule::{DrillRun, cadence};

fn plans() -> Vec<Plan> {
    crate::plan::reference()
}

fn world() -> FakeCloud {
    let f = crate::cloud::fake::reference_world((&[1.5, 3.0], &[600.0, 1200.0]));
    f.state().buckets = vec![
        "s3://drctl-evidence-use1".into(),
        "gs://drctl-evidence".into(),
    ];
    f
}

async fn read(f: &FakeCloud, plan: &Plan) -> PlanStatus {
    let (clouds, opts) = (f.clouds(), StatusOptions::default());
    let r = super::super::status(&clouds, std::slice::from_ref(plan), &opts).await;
    r.plans.into_iter().next().unwrap()
}

fn payments() -> Plan {
    plans()
        .into_iter()
        .find(|p| p.name() == "payments")
        .unwrap()
}

/// A passing drill of `plan` at `at` that journaled `inventory`.
fn passed(plan: &Plan, at: DateTime<Utc>, inventory: Option<Inventory>) -> Cadence {
    let drill = DrillRun {
        run_id: "20261101T100000Z-drill-a1".into(),
        plan: plan.name().into(),
        started: at,
        outcome: Outcome::Succeeded,
        verdict: Verdict::Pass,
        inventory,
        target: "us-east-1".into(),
        depth: "shadow".into(),
        authenticated: true,
        restore_test: None,
    };
    cadence(std::slice::from_ref(plan), &[drill], at)
        .into_iter()
        .next()
        .unwrap()
}

#[tokio::test]
async fn a_passing_drill_of_the_same_world_makes_the_plan_verified() {
    let (f, plan) = (world(), payments());
    let st = read(&f, &plan).await;
    let items = inventory(&plan, &st);
    // What the drill proves, named: a standby's maximum and floor, the
    // copies and their designation, the lag metric, the records, the
    // evidence, the plan's entries.
    for key in [
        "payments-api max in us-east-1",
        "payments-api floor in us-east-1",
        "payments-db copy in us-east-1",
        "payments-db lag metric in us-east-1",
        "plan [[compute]] payments-api",
        "plan settings",
        "region us-east-1",
    ] {
        assert!(items.contains_key(key), "{key}: {items:#?}");
    }
    assert_eq!(items["payments-api max in us-east-1"], "8");
    let now = Utc::now();
    let c = passed(&plan, now - chrono::Duration::hours(1), Some(items));
    let v = judge(&plan, &st, Some(&c), now);
    assert!(v.verified, "{v:#?}");
    assert_eq!(
        (v.staleness, v.lag, v.reason),
        (Some(Band::Within), Some(Band::Within), None)
    );
}

/// The regression the feature exists for: a standby whose maximum was
/// lowered after the drill is not verified, and the difference is named.
#[tokio::test]
async fn a_maximum_lowered_since_the_drill_makes_the_plan_not_verified_naming_it() {
    let (f, plan) = (world(), payments());
    let then = inventory(&plan, &read(&f, &plan).await);
    f.with_scaled("compute", "us-east-1", "payments-api-use1", |g| {
        let mut c = g.bounds();
        c.max = 4;
        g.size = crate::cloud::Size::Bounds(c);
    });
    let st = read(&f, &plan).await;
    let now = Utc::now();
    let v = judge(&plan, &st, Some(&passed(&plan, now, Some(then))), now);
    assert!(!v.verified);
    assert_eq!(
        v.differences,
        vec!["payments-api max in us-east-1 was 8, now 4".to_string()]
    );
    assert!(
        v.reason.unwrap().contains("was 8, now 4"),
        "the one line names it"
    );
}

#[tokio::test]
async fn a_new_entry_in_the_plan_is_named_and_an_edited_one_too() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp");
    let loaded = crate::plan::load(&[path]);
    let plan = (loaded.plans.into_iter())
        .find(|p| p.name() == "orders-gcp")
        .unwrap();
    let mut before = plan.clone();
    let run = before.spec.cloud_run.pop().expect("a [[cloud_run]]");
    before.spec.instance_group[0].active.size += 1;
    let d = differences(&definition(&before), &definition(&plan));
    assert!(
        d.contains(&format!("plan changed: a new `[[cloud_run]] {}`", run.id)),
        "{d:?}"
    );
    let mig = &plan.spec.instance_group[0].id;
    assert!(
        d.contains(&format!("plan changed: `[[instance_group]] {mig}` edited")),
        "{d:?}"
    );
    assert_eq!(d.len(), 2, "{d:?}");
    // And back: a removed entry.
    let back = differences(&definition(&plan), &definition(&before));
    assert!(
        back.contains(&format!("plan changed: `[[cloud_run]] {}` removed", run.id)),
        "{back:?}"
    );
}

#[test]
fn bands_are_within_then_over_one_two_and_four_times() {
    assert_eq!(Band::of(7.0, 7.0), Band::Within);
    assert_eq!(Band::of(7.5, 7.0), Band::Over1x);
    assert_eq!(Band::of(14.0, 7.0), Band::Over1x);
    assert_eq!(Band::of(14.5, 7.0), Band::Over2x);
    assert_eq!(Band::of(28.0, 7.0), Band::Over2x);
    assert_eq!(Band::of(28.5, 7.0), Band::Over4x);
    assert_eq!(Band::of(f64::MAX, 7.0), Band::Over4x);
    assert_eq!(Band::of(0.0, 0.0), Band::Within);
    assert_eq!(Band::of(1.0, 0.0), Band::Over4x);
}

/// Time moving past the tier's interval moves a matching plan through
/// the bands, and it stops being verified at the first.
#[tokio::test]
async fn time_past_the_interval_moves_the_plan_through_the_bands() {
    let (f, plan) = (world(), payments());
    let st = read(&f, &plan).await;
    let at = Utc::now();
    let c = passed(&plan, at, Some(inventory(&plan, &st)));
    let interval = chrono::Duration::from_std(plan.tier.drill_interval).unwrap();
    let second = chrono::Duration::seconds(1);
    for (later, band) in [
        (interval, Band::Within),
        (interval + second, Band::Over1x),
        (interval * 2 + second, Band::Over2x),
        (interval * 4 + second, Band::Over4x),
    ] {
        let v = judge(&plan, &st, Some(&c), at + later);
        assert_eq!(v.staleness, Some(band), "{later}");
        assert_eq!(v.verified, band == Band::Within, "{v:#?}");
        assert!(v.differences.is_empty());
        if band != Band::Within {
            let why = v.reason.unwrap();
            assert!(why.contains(band.words()), "{why}");
        }
    }
}

#[tokio::test]
async fn never_drilled_or_drilled_without_an_inventory_is_not_verified() {
    let (f, plan) = (world(), payments());
    let st = read(&f, &plan).await;
    let now = Utc::now();
    let never = cadence(std::slice::from_ref(&plan), &[], now);
    let v = judge(&plan, &st, never.first(), now);
    assert!(!v.verified && v.drill.is_none() && v.staleness.is_none());
    assert_eq!(v.reason.as_deref(), Some("no passing drill on record"));
    let v = judge(&plan, &st, Some(&passed(&plan, now, None)), now);
    assert!(!v.verified);
    assert!(v.reason.unwrap().contains("no inventory"));
}

/// A region that does not answer now is a difference (the plan cannot be
/// verified), and the copies it holds read as unreachable, not missing.
#[tokio::test]
async fn a_region_that_does_not_answer_is_not_verified() {
    let (f, plan) = (world(), payments());
    let then = inventory(&plan, &read(&f, &plan).await);
    f.state().dead_regions.insert("us-east-1".into());
    let now_read = read(&f, &plan).await;
    let d = differences(&then, &inventory(&plan, &now_read));
    assert!(
        d.contains(
            &"region us-east-1 cannot be read now: was answers, now does not answer".to_string()
        ),
        "{d:?}"
    );
    assert!(
        d.contains(
            &"payments-api max in us-east-1 cannot be read now: was 8, now unreadable".to_string()
        ),
        "{d:?}"
    );
}

/// Issue 74, attack 6: a fact unreadable at the drill and unreadable now
/// counted as unchanged, so nothing had proved it; plan entries were
/// compared by 64-bit digests. Both are differences now.
#[test]
fn a_fact_unread_at_the_drill_and_now_is_a_difference_and_digests_are_whole() {
    let then = Inventory::from([
        (
            "payments-api max in us-east-1".to_string(),
            "unreadable".to_string(),
        ),
        (
            "region eu-west-1".to_string(),
            "does not answer".to_string(),
        ),
        (
            "plan [[compute]] payments-api".to_string(),
            "0123456789abcdef".to_string(),
        ),
    ]);
    let mut now = then.clone();
    now.insert(
        "plan [[compute]] payments-api".into(),
        definition(&payments())["plan [[compute]] payments-api"].clone(),
    );
    assert_eq!(
        now["plan [[compute]] payments-api"].len(),
        64,
        "SHA-256, whole"
    );
    let d = differences(&then, &now);
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(
        d.iter().any(|x| x.contains("was not read at the drill")),
        "{d:?}"
    );
    assert!(d.iter().any(|x| x.contains("short digest")), "{d:?}");
}

/// Issue 74, attack 6: the last passing drill was any passing drill of
/// the plan: a drill to one standby made the plan verified for a failover
/// to another. What a drill proved is its target and depth; for another
/// target it proves nothing.
#[test]
fn a_drill_to_one_standby_does_not_verify_a_failover_to_another() {
    let plan = payments();
    let now = Utc::now();
    let own = definition(&plan);
    let c = passed(&plan, now - chrono::Duration::hours(1), Some(own.clone()));
    let v = crate::runs::verified::by_definition(&plan, &c, now);
    assert!(v.verified, "{v:?}");
    let proved = v.proved.clone().expect("what it proved");
    assert_eq!(
        (proved.target.as_str(), proved.depth.as_str()),
        ("us-east-1", "shadow")
    );
    assert!(v.clone().for_target("us-east-1").verified);
    let elsewhere = v.for_target("eu-west-1");
    assert!(!elsewhere.verified);
    let why = elsewhere.reason.unwrap();
    assert!(why.contains("not to eu-west-1"), "{why}");
}

/// The lag of the standby copies is banded against the RPO; unknown lag
/// stays unknown, never within.
#[tokio::test]
async fn the_standby_lag_is_banded_against_the_rpo_and_unknown_stays_unknown() {
    let f = world();
    let ledger = plans().into_iter().find(|p| p.name() == "ledger").unwrap();
    // ledger's replica lags 20 minutes against an RPO of 15.
    assert_eq!(
        lag_band(&ledger, &read(&f, &ledger).await),
        Some(Band::Over1x)
    );
    f.state().lag.clear();
    assert_eq!(lag_band(&ledger, &read(&f, &ledger).await), None);
}

/// A progress sink that keeps nothing.
struct Quiet;

impl crate::engine::Reporter for Quiet {
    fn started(&self, _: &crate::steps::graph::Step) {}
    fn finished(
        &self,
        _: &crate::steps::graph::Step,
        _: Result<&serde_json::Value, &crate::steps::StepFailure>,
        _: std::time::Duration,
    ) {
    }
    fn note(&self, _: &str) {}
}

/// A drill journals each plan's inventory before its steps act, read as
/// `status` reads it (the standby at its standby floor, not raised), and
/// the drill cadence carries it to the judgement.
#[tokio::test]
async fn a_drill_journals_the_plans_inventory_before_its_steps_act() {
    use crate::engine::{Engine, RunOptions};
    use crate::journal::{Event, JournalStore};
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(crate::journal::MemoryStore::new());
    let e = Engine {
        clouds: f.clouds(),
        side_clouds: f.clouds(),
        store: store.clone(),
        locks: std::sync::Arc::new(crate::state::local::LocalLocks::new(
            dir.path().to_path_buf(),
        )),
        reporter: std::sync::Arc::new(Quiet),
        confirm: None,
        notify: None,
        waits: None,
        inventory: Some(std::sync::Arc::new(StatusInventory {
            opts: Default::default(),
        })),
    };
    let o = RunOptions {
        kind: crate::journal::RunKind::Drill,
        mode: crate::engine::RunMode::Drill {
            depth: crate::steps::graph::DrillDepth::Shadow,
        },
        approve: None,
        step_timeout: Some(std::time::Duration::from_millis(300)),
        pace: crate::engine::Pace {
            poll: (
                std::time::Duration::from_millis(1),
                std::time::Duration::from_millis(5),
            ),
            ..Default::default()
        },
        ..RunOptions::failover("us-east-1")
    };
    e.run(&[payments()], &o).await.unwrap();
    let id = store.list().await.unwrap().pop().unwrap();
    let records: Vec<crate::journal::event::Record> = (store.read(&id).await.unwrap().lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |want: fn(&Event) -> bool| records.iter().position(|r| want(&r.event));
    let inventory = at(|e| matches!(e, Event::Inventory { .. })).expect("an inventory record");
    let first_step = at(|e| matches!(e, Event::StepStarted { .. })).unwrap();
    assert!(inventory < first_step, "journaled before any step acts");
    let Event::Inventory { plan, items } = &records[inventory].event else {
        unreachable!()
    };
    assert_eq!(plan, "payments");
    assert_eq!(
        items["payments-api floor in us-east-1"], "0",
        "not raised yet"
    );
    assert_eq!(items["payments-api max in us-east-1"], "8");
    let targets = BTreeMap::from([("payments".to_string(), (900, 300))]);
    let runs = crate::runs::schedule::drill_runs(&id, &records, true, &targets);
    assert_eq!(runs[0].inventory.as_ref(), Some(items));
}

/// Issue 74, attack 6 (what was left): a record or a database whose read
/// failed made no entry of the inventory, so unread at the drill and unread
/// now matched as two absences. Each is an entry all the same,
/// `unreadable`, and such a drill proves nothing of them.
#[tokio::test]
async fn a_record_or_copy_unread_at_the_drill_and_now_is_a_difference() {
    let (f, plan) = (world(), payments());
    let refused = ("rds".to_string(), "DescribeDBInstances".to_string());
    (f.state().refused).insert(refused, "AccessDenied".into());
    // Route 53's API, which the fake places in `global`, does not answer.
    f.state().dead_regions.insert("global".into());
    let st = read(&f, &plan).await;
    let items = inventory(&plan, &st);
    let unread: Vec<&String> = (items.iter())
        .filter(|(k, v)| (k.contains(" record ") || k.contains(" copy in ")) && *v == "unreadable")
        .map(|(k, _)| k)
        .collect();
    assert!(unread.iter().any(|k| k.contains(" record ")), "{items:#?}");
    assert!(unread.iter().any(|k| k.contains(" copy in ")), "{items:#?}");
    let now = Utc::now();
    let c = passed(&plan, now - chrono::Duration::hours(1), Some(items));
    let v = judge(&plan, &st, Some(&c), now);
    assert!(!v.verified, "{v:#?}");
    assert!(
        (v.differences.iter()).any(|d| d.contains("was not read at the drill")),
        "{:#?}",
        v.differences
    );
}
