use super::*;
use crate::cloud::control::ControlState;
use crate::cloud::fake::FakeCloud;
use crate::plan::Plan;

fn world() -> FakeCloud {
    let f = crate::cloud::fake::reference_world((&[1.5, 3.0], &[600.0, 1200.0]));
    f.state().buckets = vec![
        "s3://drctl-evidence-use1".into(),
        "gs://drctl-evidence".into(),
    ];
    f
}

async fn matrix(f: &FakeCloud) -> (StatusReport, Vec<Row>) {
    let plans: Vec<_> = (crate::plan::reference().into_iter())
        .filter(|p| ["payments", "ledger"].contains(&p.name()))
        .collect();
    let r = super::super::status(&f.clouds(), &plans, &Default::default()).await;
    let rows = rows(&r);
    (r, rows)
}

fn mark(rows: &[Row], plan: &str, check: &str) -> (Mark, Vec<String>) {
    let row = rows.iter().find(|r| r.plan == plan).unwrap();
    let c = row.cells.iter().find(|c| c.check == check).unwrap();
    (c.mark, c.why.clone())
}

#[tokio::test]
async fn each_plan_by_each_check_with_why_and_unknown_never_ok() {
    let f = world();
    let (_, rows) = matrix(&f).await;
    for check in ["data and lag", "capacity", "traffic", "evidence"] {
        assert_eq!(mark(&rows, "payments", check).0, Mark::Ok, "{check}");
    }
    // ledger's replica lags 20 minutes against an RPO of 15.
    let (m, why) = mark(&rows, "ledger", "data and lag");
    assert_eq!(m, Mark::Fail);
    assert!(why[0].contains("lag above the RPO"), "{why:?}");
    // The drill history was not read: verified is unknown, never ok.
    assert_eq!(mark(&rows, "payments", "verified").0, Mark::Unknown);
    // A standby group gone, and lag with no datapoint.
    let gone = (
        "compute",
        "us-east-1".to_string(),
        "payments-api-use1".to_string(),
    );
    f.state().scaled.remove(&gone);
    f.state().lag.clear();
    let (_, rows) = matrix(&f).await;
    let (m, why) = mark(&rows, "payments", "capacity");
    assert_eq!(m, Mark::Fail);
    assert!(why[0].contains("payments-api-use1"), "{why:?}");
    assert_eq!(mark(&rows, "payments", "data and lag").0, Mark::Unknown);
}

/// A standby restored from backups may be out of the RTO's reach: the
/// forecast (estimated) says so in its own column, before an outage does;
/// a standby kept warm meets it.
#[tokio::test]
async fn a_restore_forecast_over_the_rto_fails_its_column_and_a_warm_standby_meets_it() {
    let f = world();
    let (_, warm) = matrix(&f).await;
    assert_eq!(mark(&warm, "payments", "rto forecast").0, Mark::Ok);
    let plans: Vec<Plan> = (crate::plan::reference().into_iter())
        .filter(|p| p.name() == "archive")
        .collect();
    for p in &plans {
        crate::plan::kinds::seed_plan(&f, p);
    }
    let r = super::super::status(&f.clouds(), &plans, &Default::default()).await;
    let mut tight = r.clone();
    for region in &mut tight.plans[0].regions {
        if let Some(fc) = region.rto_forecast.as_mut() {
            fc.target_seconds = 60.0;
        }
    }
    let (m, why) = mark(&rows(&tight), "archive", "rto forecast");
    assert_eq!(m, Mark::Fail, "{why:?}");
    assert!(
        why[0].starts_with("to us-east-1: ") && why[0].contains("estimated"),
        "{why:?}"
    );
    assert_eq!(mark(&rows(&r), "archive", "rto forecast").0, Mark::Ok);
}

#[tokio::test]
async fn the_page_holds_a_cell_per_plan_and_check_and_nothing_to_fetch() {
    let f = world();
    let (r, rows) = matrix(&f).await;
    let page = html(&r, chrono::Utc::now());
    assert!(page.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "<link", "<img", "src=", "url(", "http"] {
        assert!(!page.contains(banned), "{banned}");
    }
    let cells = page.matches(r#"<td class="mark "#).count();
    assert_eq!(
        cells,
        rows.len() * (CHECKS.len() + 1),
        "a cell per check and ready"
    );
    assert!(page.contains(r#"data-plan="ledger""#));
    assert!(page.contains(r#"data-check="data and lag" data-mark="fail">FAIL"#));
}

/// The capacity cell judged a group by matching its name in its region's
/// problems: another resource's problem that named it (a check called
/// after the group) failed the group's capacity. Each group now carries
/// its own kind's judgement.
#[tokio::test]
async fn regression_the_capacity_cell_matched_another_resources_problem_by_name() {
    let f = world();
    let (mut r, _) = matrix(&f).await;
    let p = r.plans.iter_mut().find(|p| p.plan == "payments").unwrap();
    let east = p
        .regions
        .iter_mut()
        .find(|x| x.region == "us-east-1")
        .unwrap();
    (east.problems).push("check payments-api-use1-health in us-east-1: failing".into());
    assert_eq!(mark(&rows(&r), "payments", "capacity").0, Mark::Ok);

    // A group too small for the active capacity fails its own cell, in
    // its kind's words, and the region's problems say the same.
    f.with_scaled("compute", "us-east-1", "payments-api-use1", |g| {
        let mut c = g.bounds();
        c.max = 2;
        g.size = crate::cloud::Size::Bounds(c);
    });
    let (r, rows) = matrix(&f).await;
    let (m, why) = mark(&rows, "payments", "capacity");
    assert_eq!(m, Mark::Fail);
    let said = "compute group payments-api-use1 in us-east-1 has max 2 below the active capacity 4";
    assert_eq!(why, vec![said.to_string()]);
    let p = r.plans.iter().find(|p| p.plan == "payments").unwrap();
    let east = p.regions.iter().find(|x| x.region == "us-east-1").unwrap();
    assert!(
        east.problems.iter().any(|w| w == said),
        "{:?}",
        east.problems
    );
    assert_eq!(east.compute[0].problems, vec![said.to_string()]);
}

/// checkout after `dns prepare` (data-plane switch, home us-east-1), read.
async fn checkout(f: &FakeCloud) -> (StatusReport, Vec<Plan>) {
    let plans: Vec<Plan> = (crate::plan::reference().into_iter())
        .filter(|p| p.name() == "checkout")
        .collect();
    let r = super::super::status(&f.clouds(), &plans, &Default::default()).await;
    (r, plans)
}

/// The reference world with checkout's data plane prepared
/// (`dns prepare`), and checkout.
async fn prepared_checkout() -> (FakeCloud, Vec<Plan>) {
    let f = world();
    (f.state().buckets).push("s3://drctl-evidence-euw1".into());
    let (_, plans) = checkout(&f).await;
    crate::steps::dns_setup::prepare(&f.clouds(), &plans[0], None)
        .await
        .expect("dns prepare");
    (f, plans)
}

/// The traffic cell reads each data-plane control: its region serves
/// exactly where the plan serves. A missing control fails the standby
/// checks (the switch's own readiness), not the traffic cell as well; one
/// whose region does not answer says nothing of where traffic goes. The
/// verified inventory carries what each says.
#[tokio::test]
async fn the_traffic_cell_and_the_inventory_read_each_data_plane_control() {
    let (f, plans) = prepared_checkout().await;
    let (r, _) = checkout(&f).await;
    let p = &r.plans[0];
    assert_eq!(p.active_region, "us-east-1");
    assert_eq!(p.controls.len(), 3, "{:#?}", p.controls);
    assert_eq!(mark(&rows(&r), "checkout", "traffic"), (Mark::Ok, vec![]));
    let items = crate::status::verified::inventory(&plans[0], p);
    assert_eq!(items["checkout control in us-east-1"], "serve");
    assert_eq!(items["checkout control in eu-west-1"], "drain");

    // eu-west-1's control deleted, us-west-2's region dead.
    let url = "s3://drctl-control-euw1/checkout/checkout";
    assert!(
        f.state().objects.remove(url).is_some(),
        "the control's object"
    );
    f.state().dead_regions.insert("us-west-2".into());
    let (r, _) = checkout(&f).await;
    let rows_now = rows(&r);
    assert_eq!(mark(&rows_now, "checkout", "traffic").0, Mark::Ok);
    let (m, why) = mark(&rows_now, "checkout", "standby checks");
    assert_eq!(m, Mark::Fail, "{why:?}");
    assert!(why.iter().any(|w| w.contains(url)), "{why:?}");
    let now = crate::status::verified::inventory(&plans[0], &r.plans[0]);
    assert_eq!(now["checkout control in eu-west-1"], "missing");
    assert_eq!(now["checkout control in us-west-2"], "unreadable");
    let said = crate::status::verified::differences(&items, &now);
    assert!(
        said.contains(&"checkout control in eu-west-1 was drain, now missing".to_string()),
        "{said:?}"
    );

    // With us-west-2 back, a control that says serve outside the serving
    // region fails the traffic cell.
    f.state().dead_regions.clear();
    (f.state().objects).insert(url.into(), control(ControlState::Serve));
    let (r, _) = checkout(&f).await;
    let (m, why) = mark(&rows(&r), "checkout", "traffic");
    assert_eq!(m, Mark::Fail);
    assert!(
        why.iter().any(
            |w| w == "checkout control in eu-west-1 says serve; the plan serves from us-east-1"
        ),
        "{why:?}"
    );
}

/// A control object as `dns prepare` or a switch writes it.
fn control(state: ControlState) -> bytes::Bytes {
    let c = crate::cloud::control::Control {
        state,
        token: 0,
        run: "by-hand".into(),
        at: chrono::Utc::now(),
    };
    c.body().into_bytes().into()
}

/// The serving region was read from DNS and the databases alone, else
/// home: a plan switched by its controls whose names could not be
/// resolved, with no primary read, was placed at home, and the traffic
/// cell then failed both controls that were right. The controls now place
/// it where they say serve.
#[tokio::test]
async fn regression_a_plan_placed_by_its_controls_alone_failed_its_right_controls() {
    let (f, _) = prepared_checkout().await;
    // Switched to eu-west-1 by its controls; the names resolve to nothing
    // and no copy answers as a primary.
    for (region, state) in [
        ("use1", ControlState::Drain),
        ("usw2", ControlState::Drain),
        ("euw1", ControlState::Serve),
    ] {
        let url = format!("s3://drctl-control-{region}/checkout/checkout");
        (f.state().objects).insert(url, control(state));
    }
    f.state().records.clear();
    f.state().databases.clear();
    let (r, _) = checkout(&f).await;
    let p = &r.plans[0];
    assert_eq!(p.active_region, "eu-west-1", "{:#?}", p.dns);
    let (m, why) = mark(&rows(&r), "checkout", "traffic");
    assert!(
        !why.iter().any(|w| w.contains("control")),
        "the controls are right: {m:?} {why:?}"
    );
}
