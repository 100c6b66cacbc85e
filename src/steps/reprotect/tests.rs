//! The reconciler against a scripted role (its promises, one by one), and
//! Aurora's rebuild on the fake cloud: after a detach, after a managed
//! failover, run again, and after a crash.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{CloudError, Clouds};
use crate::plan::kinds::reprotecting::Kept;

const RUN: &str = "20261125T070000Z-orders-b7c2";

fn plan(name: &str) -> crate::plan::Plan {
    (crate::plan::reference().into_iter())
        .find(|p| p.name() == name)
        .expect("a reference plan")
}

/// The one reprotect step of `plan`'s reprotection from `active`, and
/// its graph's steps.
fn step_of(plan: &crate::plan::Plan, active: &str) -> (Reprotect, Vec<crate::steps::graph::Step>) {
    let g = crate::steps::graph::compile_mode(plan, active, &RunMode::Reprotect).unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Reprotect(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a reprotect step");
    (step, g.steps)
}

/// Runs `f` with a context of the step's plan, polling fast, 60 s of
/// (real or paused) time.
async fn with_cx<T>(
    clouds: &Clouds,
    (plan, active): (&crate::plan::Plan, &str),
    steps: &[crate::steps::graph::Step],
    f: impl AsyncFnOnce(&Cx<'_>) -> T,
) -> T {
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: RUN,
        deadline: tokio::time::Instant::now().into_std() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Cx::for_test(clouds, plan, active, &outputs, steps)
    };
    f(&cx).await
}

// ------------------------------------------------------------ the loop

/// A role that answers a script of standings, one a read (the last one
/// for ever after), and counts what it is asked to make.
struct Scripted {
    script: Mutex<Vec<Standing>>,
    made: Mutex<Vec<String>>,
    /// The operation a move answers.
    operation: Option<String>,
    /// How that operation ends.
    op_ends: Result<(), String>,
}

impl Scripted {
    fn new(script: Vec<Standing>) -> Self {
        Self {
            script: Mutex::new(script),
            made: Mutex::new(Vec::new()),
            operation: None,
            op_ends: Ok(()),
        }
    }

    fn made(&self) -> Vec<String> {
        self.made.lock().unwrap().clone()
    }
}

const ABOUT: crate::plan::kinds::reprotecting::ReprotectAbout =
    crate::plan::kinds::reprotecting::ReprotectAbout {
        describe: "scripted",
        calls: &["x:Write"],
        waits: &[],
        polls: "x:Read",
    };

#[async_trait]
impl Reprotecting for Scripted {
    fn about(&self) -> &'static crate::plan::kinds::reprotecting::ReprotectAbout {
        &ABOUT
    }
    async fn standing(
        &self,
        _: &Clouds,
        _: &Guarded,
        _: &str,
        _: crate::plan::kinds::reprotecting::Made<'_>,
    ) -> Result<Standing, CloudError> {
        let mut s = self.script.lock().unwrap();
        Ok(if s.len() > 1 {
            s.remove(0)
        } else {
            s[0].clone()
        })
    }
    async fn make(&self, _: &Clouds, _: &Guarded, m: &Move) -> Result<Option<String>, CloudError> {
        self.made.lock().unwrap().push(m.says.clone());
        Ok(self.operation.clone())
    }
    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::Operation(self)
    }
    async fn read_one(&self, _: &Clouds, _: &str, _: &str) -> Result<String, CloudError> {
        Ok("scripted".into())
    }
    async fn kept(&self, _: &Clouds, _: &Guarded, _: &str) -> Result<Vec<Kept>, CloudError> {
        Ok(vec![Kept {
            at: "r/snap".into(),
            warning: "copy the snapshot".into(),
        }])
    }
}

#[async_trait]
impl crate::plan::kinds::Operations for Scripted {
    async fn operation(
        &self,
        _: &Clouds,
        _: (&str, &str),
        _: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        Ok(Some(self.op_ends.clone()))
    }
}

fn a_move(says: &str) -> Move {
    Move {
        call: "x:Write".into(),
        resource: "db".into(),
        region: "r1".into(),
        now: "old".into(),
        says: says.into(),
        parks: Some("r1/db -> db-pre-b7c2".into()),
        warning: Some("kept".into()),
        payload: Value::Null,
    }
}

fn protected() -> Standing {
    Standing::Protected {
        copies: vec![Guard {
            region: "r1".into(),
            address: "db".into(),
            endpoint: None,
        }],
        dr: None,
        parked: vec![("r1/db -> db-pre-b7c2".into(), "kept".into())],
    }
}

/// Runs the payments plan's step through `role`.
async fn reconciled(role: &Scripted) -> Result<ReprotectOutput, StepFailure> {
    let plan = plan("payments");
    let (step, steps) = step_of(&plan, "us-east-1");
    let f = FakeCloud::new();
    let clouds = f.clouds();
    let v = with_cx(&clouds, (&plan, "us-east-1"), &steps, async |cx| {
        step.reconcile(cx, role).await
    })
    .await?;
    Ok(ReprotectOutput::read(&v).expect("its output"))
}

/// A move the cloud does not show yet (a rename settling, a create not
/// listed yet) is asked for again by the reads after it: it is waited
/// on, never sent twice; what it parked and warned of is in the output.
#[tokio::test(start_paused = true)]
async fn a_move_asked_for_again_before_the_cloud_shows_it_is_sent_once() {
    let m = a_move("renamed");
    let role = Scripted::new(vec![
        Standing::Act(m.clone()),
        Standing::Act(m.clone()),
        Standing::Act(m),
        protected(),
    ]);
    let out = reconciled(&role).await.expect("protected");
    assert_eq!(role.made(), ["renamed"]);
    assert_eq!(out.moves.len(), 1, "{out:?}");
    assert_eq!(out.parked, ["r1/db -> db-pre-b7c2"]);
    assert!(!out.already_protected);
    assert_eq!(out.kept, ["r/snap"]);
    assert_eq!(out.warnings, ["kept", "copy the snapshot"]);
}

/// A move whose operation is done, asked for again, is refused: the
/// provider said it was made, and sending it again would loop.
#[tokio::test(start_paused = true)]
async fn a_move_asked_for_again_after_its_operation_is_done_is_refused() {
    let m = a_move("designated");
    let mut role = Scripted::new(vec![Standing::Act(m)]);
    role.operation = Some("op-1".into());
    let e = reconciled(&role).await.expect_err("refused");
    assert!(e.to_string().contains("op-1"), "{e}");
    assert_eq!(role.made(), ["designated"], "sent once");
}

/// A move's failed operation fails the step, naming it.
#[tokio::test(start_paused = true)]
async fn a_moves_failed_operation_fails_the_step_naming_it() {
    let mut role = Scripted::new(vec![Standing::Act(a_move("designated")), protected()]);
    role.operation = Some("op-2".into());
    role.op_ends = Err("quota".into());
    let e = reconciled(&role).await.expect_err("failed");
    assert!(
        e.to_string().contains("op-2") && e.to_string().contains("quota"),
        "{e}"
    );
}

/// An operation found under way (a resumed run's, or one whose answer was
/// lost) is followed to done, never sent again.
#[tokio::test(start_paused = true)]
async fn an_operation_found_under_way_is_followed_not_sent_again() {
    let role = Scripted::new(vec![
        Standing::Follow {
            operation: "op-3".into(),
            what: "the designation".into(),
            resource: "db".into(),
            region: "r1".into(),
        },
        protected(),
    ]);
    let out = reconciled(&role).await.expect("protected");
    assert!(role.made().is_empty());
    assert_eq!(out.followed, ["op-3"]);
    assert!(!out.already_protected, "{out:?}");
}

/// An operation followed to done that the listing still shows running is
/// waited on (polled), never followed in a tight loop; a copy found
/// parked under this run's name (a rename made before a crash) is said
/// with its warning, once.
#[tokio::test(start_paused = true)]
async fn a_followed_operation_still_listed_is_waited_on_and_a_parked_copy_is_said() {
    let follow = || Standing::Follow {
        operation: "op-4".into(),
        what: "the designation".into(),
        resource: "db".into(),
        region: "r1".into(),
    };
    let role = Scripted::new(vec![follow(), follow(), follow(), protected()]);
    let out = reconciled(&role).await.expect("protected");
    assert_eq!(out.followed, ["op-4"], "followed once");
    assert_eq!(out.parked, ["r1/db -> db-pre-b7c2"]);
    assert_eq!(out.warnings, ["kept", "copy the snapshot"]);
}

/// Waits end when the cloud shows something else; a protected resource
/// is said to be, with nothing written. A refusal writes nothing and
/// names its resource and region.
#[tokio::test(start_paused = true)]
async fn waits_end_and_a_refusal_writes_nothing() {
    let role = Scripted::new(vec![
        Standing::Wait("a rename".into()),
        Standing::Wait("a rename".into()),
        protected(),
    ]);
    let out = reconciled(&role).await.expect("protected");
    assert!(out.already_protected && out.moves.is_empty(), "{out:?}");

    let role = Scripted::new(vec![Standing::refuse("no", "fix it", "db-x", "r9")]);
    let e = reconciled(&role).await.expect_err("refused");
    let StepFailure::State {
        message,
        hint,
        resource,
        region,
    } = e
    else {
        panic!("a refusal: {e}")
    };
    assert_eq!(
        (
            message.as_str(),
            hint.as_str(),
            resource.as_str(),
            region.as_str()
        ),
        ("no", "fix it", "db-x", "r9")
    );
    assert!(role.made().is_empty());
}

/// A wait that never ends ends at the step's deadline, naming it.
#[tokio::test(start_paused = true)]
async fn a_wait_that_never_ends_fails_at_the_deadline() {
    let role = Scripted::new(vec![Standing::Wait("a former primary to rejoin".into())]);
    let e = reconciled(&role).await.expect_err("timed out");
    assert!(e.to_string().contains("a former primary to rejoin"), "{e}");
}

// ------------------------------------------------ every kind, compiled

/// Every reference plan's data resources whose role reprotects get one
/// step each, from the target's copy, protecting every other region's;
/// the set of kinds compiled is the set whose role reprotects.
#[test]
fn every_kind_whose_data_role_reprotects_is_reprotected_through_the_one_step() {
    let mut kinds = std::collections::BTreeSet::new();
    for plan in crate::plan::reference_with_gcp() {
        let target = (plan.regions().iter())
            .find(|r| *r != plan.home())
            .expect("a standby region")
            .clone();
        let g = crate::steps::graph::compile_mode(&plan, &target, &RunMode::Reprotect).unwrap();
        for s in &g.steps {
            let StepKind::Reprotect(r) = &s.kind else {
                continue;
            };
            kinds.insert(r.of);
            assert!(r.of.reprotecting().is_some());
            assert_eq!(r.guarded.others.len() + 1, plan.regions().len(), "{r:?}");
            assert!(!r.guarded.others.contains(&r.guarded.primary));
            assert_eq!(
                s.id.to_string(),
                format!("{}/reprotect:{}", plan.name(), r.resource)
            );
            assert!(s.kind.time().polls.is_some(), "its role's cost: {r:?}");
        }
    }
    let roles: std::collections::BTreeSet<ResourceKind> = (ResourceKind::ALL.iter().copied())
        .filter(|k| k.reprotecting().is_some())
        .collect();
    assert_eq!(kinds, roles);
}

// ------------------------------------------------------- Aurora rebuilt

fn aurora_world() -> FakeCloud {
    let f = FakeCloud::new();
    f.add_global(
        "orders-global",
        &[
            ("us-west-2", "orders-usw2"),
            ("us-east-1", "orders-use1"),
            ("eu-west-1", "orders-euw1"),
        ],
    );
    f
}

async fn run_orders(clouds: &Clouds) -> Result<ReprotectOutput, StepFailure> {
    let plan = plan("orders");
    let (step, steps) = step_of(&plan, "us-east-1");
    assert_eq!(step.of, ResourceKind::GlobalDatabase);
    let v = with_cx(clouds, (&plan, "us-east-1"), &steps, async |cx| {
        step.run(cx).await
    })
    .await?;
    Ok(ReprotectOutput::read(&v).expect("its outputs"))
}

async fn members(f: &FakeCloud) -> Vec<(String, bool)> {
    let g = (f.clouds().aurora)
        .describe_global("us-east-1", "orders-global")
        .await
        .expect("read")
        .expect("exists");
    let mut m: Vec<(String, bool)> = g.members.iter().map(|m| (m.id.clone(), m.writer)).collect();
    m.sort();
    m
}

fn calls(out: &ReprotectOutput, call: &str) -> Vec<String> {
    (out.moves.iter())
        .filter(|m| m.call == call)
        .map(|m| format!("{}/{}", m.region, m.resource))
        .collect()
}

const USE1: &str = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";

#[tokio::test]
async fn after_a_detach_the_old_members_are_parked_and_the_global_cluster_is_made_again() {
    let f = aurora_world();
    let c = f.clouds();
    (c.aurora.detach_cluster("us-east-1", "orders-global", USE1))
        .await
        .unwrap();
    f.state().writes.clear();

    let out = run_orders(&c).await.expect("rebuilds");
    assert_eq!(
        calls(&out, "rds:CreateGlobalCluster"),
        ["us-east-1/orders-global"]
    );
    let tag = "2c7b";
    assert_eq!(
        out.parked,
        [
            format!("eu-west-1/orders-euw1 -> orders-euw1-pre-{tag}"),
            format!("us-west-2/orders-usw2 -> orders-usw2-pre-{tag}"),
        ],
        "secondaries first, the old writer last"
    );
    let mut made = calls(&out, "rds:CreateDBCluster");
    made.sort();
    assert_eq!(made, ["eu-west-1/orders-euw1", "us-west-2/orders-usw2"]);
    assert_eq!(
        members(&f).await,
        [
            ("orders-euw1".to_string(), false),
            ("orders-use1".to_string(), true),
            ("orders-usw2".to_string(), false),
        ]
    );
    // The old writer is kept, renamed, standalone.
    let old = (c.aurora)
        .describe_cluster("us-west-2", &format!("orders-usw2-pre-{tag}"))
        .await
        .unwrap()
        .expect("parked, not deleted");
    assert_eq!(old.global_cluster, None);
    assert!(
        (out.warnings.iter()).any(|w| w.contains("writable on its own")),
        "{out:?}"
    );
    let writes = f.state().writes.clone();
    for w in [
        "DeleteGlobalCluster orders-global",
        "CreateGlobalCluster orders-global",
    ] {
        assert!(writes.contains(&w.to_string()), "{writes:?}");
    }
    assert_eq!(out.protected.len(), 2, "{out:?}");

    // Run again: protected, nothing sent.
    f.state().writes.clear();
    let again = run_orders(&c).await.expect("protected");
    assert!(again.already_protected, "{again:?}");
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
}

#[tokio::test]
async fn after_a_managed_failover_it_records_the_old_writers_snapshot_and_changes_nothing() {
    let f = aurora_world();
    let c = f.clouds();
    (c.aurora.failover_global("us-east-1", "orders-global", USE1))
        .await
        .unwrap();
    f.state().writes.clear();
    let out = run_orders(&c).await.expect("protected");
    assert!(out.already_protected);
    assert_eq!(out.kept.len(), 1, "{out:?}");
    assert!(
        out.kept[0].starts_with("us-west-2/rds:unplanned-global-failover-orders-usw2-"),
        "{out:?}"
    );
    assert!(
        out.warnings[0].contains("expires with the cluster's backup retention"),
        "{out:?}"
    );
    assert!(f.state().writes.is_empty());
}

#[tokio::test]
async fn a_secondary_in_the_active_region_is_refused() {
    let f = aurora_world();
    let e = run_orders(&f.clouds()).await.expect_err("not the writer");
    assert!(
        e.to_string().contains("is a secondary of orders-global"),
        "{e}"
    );
}

#[tokio::test]
async fn a_crash_after_parking_one_member_is_picked_up_where_it_stopped() {
    let f = aurora_world();
    let c = f.clouds();
    (c.aurora.detach_cluster("us-east-1", "orders-global", USE1))
        .await
        .unwrap();
    // The first attempt parked eu-west-1's member, then died.
    let euw1 = "arn:aws:rds:eu-west-1:123456789012:cluster:orders-euw1";
    (c.aurora.detach_cluster("eu-west-1", "orders-global", euw1))
        .await
        .unwrap();
    (c.aurora
        .rename_cluster("eu-west-1", "orders-euw1", "orders-euw1-pre-2c7b"))
    .await
    .unwrap();
    f.state().writes.clear();
    let out = run_orders(&c).await.expect("rebuilds");
    assert_eq!(calls(&out, "rds:CreateGlobalCluster").len(), 1);
    let renames = (f.state().writes.iter())
        .filter(|w| w.starts_with("ModifyDBCluster"))
        .count();
    assert_eq!(
        renames,
        1,
        "only the old writer is renamed now: {:?}",
        f.state().writes
    );
}

// ------------------------------------------------------------- preview

/// A preview shows the next move as the kind read it, then the goal.
#[tokio::test]
async fn a_preview_shows_the_next_move_then_the_goal() {
    let f = aurora_world();
    let c = f.clouds();
    (c.aurora.detach_cluster("us-east-1", "orders-global", USE1))
        .await
        .unwrap();
    f.state().writes.clear();
    let plan = plan("orders");
    let (step, steps) = step_of(&plan, "us-east-1");
    let rows = with_cx(&c, (&plan, "us-east-1"), &steps, async |cx| {
        step.preview(cx).await
    })
    .await
    .expect("previewed");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].call, "rds:RemoveFromGlobalCluster", "{rows:?}");
    assert!(rows[0].change && rows[1].change);
    assert!(rows[1].desired.contains("follows"), "{rows:?}");
    assert!(f.state().writes.is_empty(), "a preview writes nothing");
}

// ----------------------------------------------------------- preflight

/// Preflight: every region a reprotection writes to must answer, for
/// every kind (read through its role); with all answering, what the kind
/// would refuse blocks too, with its fix.
#[tokio::test]
async fn preflight_blocks_a_region_that_does_not_answer_and_what_the_kind_refuses() {
    let plan = plan("orders");
    let (step, steps) = step_of(&plan, "us-east-1");
    let blocking = |f: FakeCloud| {
        let (plan, step, steps) = (&plan, &step, &steps);
        async move {
            let c = f.clouds();
            let found = with_cx(&c, (plan, "us-east-1"), steps, async |cx| {
                step.preflight(cx).await
            })
            .await;
            (found.into_iter())
                .filter(|x| x.problem.is_some())
                .map(|x| (x.region, x.state))
                .collect::<Vec<_>>()
        }
    };
    // us-east-1's member is a secondary: refused, naming the fix.
    assert_eq!(
        blocking(aurora_world()).await,
        [("us-east-1".to_string(), "refused".to_string())]
    );
    let dead = aurora_world();
    dead.state().dead_regions.insert("eu-west-1".into());
    assert_eq!(
        blocking(dead).await,
        [("eu-west-1".to_string(), "does not answer".to_string())]
    );
    // After a managed failover to us-east-1: nothing blocks.
    let f = aurora_world();
    (f.clouds().aurora)
        .failover_global("us-east-1", "orders-global", USE1)
        .await
        .unwrap();
    assert_eq!(blocking(f).await, []);
}
