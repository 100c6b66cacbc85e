//! Decide: what the reads of one plan mean. Pure (data in, rows and
//! problems out), so every rule is tested without a cloud.
//!
//! Which region is active is decided here, from all the reads together
//! (where DNS points, then where the databases are primary); what each
//! resource in a standby region needs to take over is its step kind's to
//! say ([`crate::steps::promote_standby_problems`], [`restore::standby_problems`](crate::steps::restore_standby_problems),
//! [`crate::steps::capacity::standby_problems`], and the kinds' own readiness for checks and
//! buckets), with the RPO rule the failover's gate uses ([`LagCheck`]).

use std::collections::BTreeMap;
use std::time::Duration;

use super::read::{BucketRead, DbRead, DnsRead, GroupRead, PlanReading};
use super::{ComputeStatus, DbStatus, DnsStatus, EvidenceStatus, PlanStatus, RegionStatus};
use crate::cloud::{CloudError, DbRole, DnsRecord};
use crate::engine::gates::LagCheck;
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::plan::kinds::Shown;
use crate::plan::kinds::traffic::Points;
use crate::steps::placement;
use crate::steps::placement::{ControlReading, ControlSaid};
use crate::steps::{CopyRead, Finding};

fn err_line(e: &CloudError) -> String {
    e.summary()
}

/// What went wrong reading: plan-level problems (an answer that refused
/// us), and the regions that did not answer (region → why, first read).
#[derive(Debug, Default)]
struct Faults {
    problems: Vec<String>,
    dead: BTreeMap<String, String>,
}

impl Faults {
    /// Files a failed read of `region`: a region that did not answer (as
    /// opposed to an answer that refused us) is dead.
    fn note(&mut self, region: &str, e: &CloudError) {
        if e.kind.is_transient() {
            self.dead
                .entry(region.to_string())
                .or_insert_with(|| err_line(e));
        } else {
            self.problems.push(err_line(e));
        }
    }
}

/// The state of `plan`, from what was read of it.
pub(super) fn assess(plan: &Plan, window: Duration, reading: PlanReading) -> PlanStatus {
    let PlanReading {
        dbs,
        groups,
        dns,
        evidence,
        checks,
        controls,
        depends,
    } = reading;
    let mut faults = Faults::default();
    let dbs: Vec<(String, DbStatus)> = dbs
        .into_iter()
        .map(|r| db_row(plan, window, r, &mut faults))
        .collect();
    let mut dns_rows = Vec::new();
    for (d, read) in placement::records(plan).zip(dns) {
        match dns_row(plan, d, read, &dbs) {
            Ok(mut s) => {
                s.switch_depends = (d.switching())
                    .and_then(|sw| depends.get(&sw.zone().subject()).cloned().flatten());
                dns_rows.push(s)
            }
            Err(e) => faults.problems.push(e),
        }
    }
    let active = active_region(plan, &dns_rows, &dbs, &controls);
    let mut compute = compute_rows(plan, &groups, &mut faults);
    let regions: Vec<RegionStatus> = plan
        .regions()
        .iter()
        .map(|region| {
            let sites = plan.sites();
            let mut row = RegionStatus {
                region: region.clone(),
                gcp_region: (sites.gcp(region) != region).then(|| sites.gcp(region).to_string()),
                role: if *region == active {
                    "active"
                } else {
                    "standby"
                },
                unreachable: faults.dead.get(region).cloned(),
                databases: (dbs.iter().filter(|(r, _)| r == region))
                    .map(|(_, s)| s.clone())
                    .collect(),
                compute: compute.remove(region).unwrap_or_default(),
                checks: Vec::new(),
                ready: true,
                problems: Vec::new(),
                rto_forecast: None,
            };
            if *region != active {
                row.checks = checks.get(region).cloned().unwrap_or_default();
                if row.unreachable.is_none() {
                    for g in &mut row.compute {
                        g.problems = group_problems(plan, region, g);
                    }
                }
                row.rto_forecast = rto_forecast(plan, region);
                row.problems = standby_problems(plan, window, &row);
                row.problems
                    .extend(row.rto_forecast.and_then(|f| out_of_reach(plan, region, f)));
                row.ready = row.problems.is_empty();
            }
            row
        })
        .collect();
    let evidence: Vec<EvidenceStatus> = evidence.into_iter().map(evidence_row).collect();
    let mut problems = faults.problems;
    problems.extend(evidence.iter().filter_map(evidence_problem));
    PlanStatus {
        plan: plan.name().to_string(),
        tier: plan.tier.name.clone(),
        rto_seconds: plan.tier.rto.as_secs(),
        rpo_seconds: plan.tier.rpo.as_secs(),
        active_region: active,
        allowed_regions: plan.spec.plan.allowed_regions.clone(),
        dns: dns_rows,
        controls,
        ready: problems.is_empty() && regions.iter().all(|r| r.ready),
        regions,
        evidence,
        problems,
        drill: None,
        verified: None,
    }
}

/// One database row (with its region), from its reads.
fn db_row(plan: &Plan, window: Duration, r: DbRead, faults: &mut Faults) -> (String, DbStatus) {
    let mut st = DbStatus {
        id: r.id,
        instance: r.instance,
        role: "unknown".into(),
        source: None,
        state: None,
        endpoint: None,
        endpoint_moves: false,
        own_names: Vec::new(),
        restored_by: None,
        lag_seconds: None,
        lag_datapoints: 0,
        lag_window_seconds: window.as_secs(),
        within_rpo: None,
        restorable_point: None,
        notes: r.notes,
    };
    let point = (plan.spec.resource(&st.id))
        .and_then(|x| x.data())
        .is_some_and(|c| c.about().point);
    match r.described {
        Ok(Some(i)) => {
            st.role = match i.role {
                DbRole::Primary => "primary".into(),
                DbRole::Replica(src) => {
                    st.source = Some(src);
                    "replica".into()
                }
            };
            st.state = Some(i.status);
            st.endpoint = i.endpoint;
            st.endpoint_moves = i.moves_with_primary;
            st.own_names = i.own_names;
            st.restored_by = i.restored_by;
        }
        Ok(None) => st.role = "missing".into(),
        Err(e) => {
            if e.kind.is_transient() {
                st.role = "unreachable".into();
            }
            faults.note(&r.region, &e);
        }
    }
    match r.lag {
        Some(Ok(lag)) => {
            st.lag_seconds = lag.max.map(|m| m.as_secs_f64());
            st.lag_datapoints = lag.datapoints;
            st.within_rpo = lag.max.map(|m| m <= plan.tier.rpo);
            st.restorable_point = lag.latest.map(|(_, at)| at).filter(|_| point);
        }
        Some(Err(e)) => faults.note(&r.region, &e),
        None => {}
    }
    (r.region, st)
}

/// The compute rows of each region, in plan order.
fn compute_rows(
    plan: &Plan,
    groups: &[GroupRead],
    faults: &mut Faults,
) -> BTreeMap<String, Vec<ComputeStatus>> {
    let mut rows = BTreeMap::new();
    for region in plan.regions() {
        let mut here = Vec::new();
        for g in groups.iter().filter(|g| g.region == *region) {
            let group = g.name.clone();
            let found = match &g.group {
                Ok(found) => found.as_ref(),
                Err(e) => {
                    faults.note(region, e);
                    None
                }
            };
            here.push(ComputeStatus {
                id: g.id.clone(),
                label: g.label,
                group,
                exists: found.is_some(),
                capacity: found.map(|f| f.capacity),
                in_service: found.filter(|f| f.status.is_none()).map(|f| f.in_service),
                status: found.and_then(|f| f.status.clone()),
                problems: Vec::new(),
                notes: found.map(|f| f.notes.clone()).unwrap_or_default(),
            });
        }
        rows.insert(region.clone(), here);
    }
    rows
}

/// Where DNS points wins (after a failover both copies may be primaries);
/// then where the databases are primary, the one drctl restored last
/// first (a restore failover leaves the old primary a primary); then
/// where the data-plane
/// controls say serve (what the health checks send traffic by, when the
/// names could not be resolved); then home.
fn active_region(
    plan: &Plan,
    dns: &[DnsStatus],
    dbs: &[(String, DbStatus)],
    controls: &[ControlReading],
) -> String {
    let primaries: Vec<&str> = dbs
        .iter()
        .filter(|(_, s)| s.role == "primary")
        .map(|(r, _)| r.as_str())
        .collect();
    let serving = |r: &str| {
        (controls.iter())
            .filter(|c| c.region == r && c.said == ControlSaid::Serve)
            .count()
    };
    // Of primaries restored by drctl, the last restore serves (run ids
    // begin with their start time); an old primary left beside it was
    // restored by none.
    let restored = |r: &str| {
        (dbs.iter())
            .filter(|(at, s)| at == r && s.role == "primary")
            .filter_map(|(_, s)| s.restored_by.as_deref().map(str::to_lowercase))
            .max()
    };
    let last_restore = (plan.regions().iter()).filter_map(|r| restored(r)).max();
    plan.regions()
        .iter()
        .max_by_key(|r| {
            let votes = dns
                .iter()
                .filter(|d| d.points_to.as_deref() == Some(r.as_str()))
                .count();
            (
                votes,
                primaries.contains(&r.as_str()),
                last_restore.is_some() && restored(r) == last_restore,
                serving(r),
                std::cmp::Reverse(plan.regions().iter().position(|x| x == *r)),
            )
        })
        .cloned()
        .unwrap_or_else(|| plan.home().to_string())
}

/// The forecast RTO of `plan` failing over to `region` alone, from the
/// model of the providers' times (pure; `None` when the model cannot say).
fn rto_forecast(plan: &Plan, region: &str) -> Option<super::RtoForecast> {
    let model = crate::cloud::model::Model::aws().ok()?;
    let plans = std::slice::from_ref(plan);
    let req = crate::forecast::Request::new(model, plans, region);
    let f = crate::forecast::forecast(model, &req).ok()?;
    let p = f.plans.first()?;
    Some(super::RtoForecast {
        p50_seconds: p.rto.p50_seconds,
        p90_seconds: p.rto.p90_seconds,
        target_seconds: p.target_seconds,
        basis: "estimated",
    })
}

/// Why a standby's forecast says its RTO is out of reach: a failover that
/// takes longer than the tier's RTO at its median (a restore from backups
/// of a large database, say), said before an outage does (pure).
fn out_of_reach(plan: &Plan, region: &str, f: super::RtoForecast) -> Option<String> {
    let show = crate::forecast::show;
    (f.p50_seconds > f.target_seconds).then(|| {
        format!(
            "a failover to {region} is forecast to take {} at the median ({} at p90; estimated from the model of the providers' times, not measured), over the {} tier's RTO of {}: the RTO is out of reach from this standby",
            show(f.p50_seconds),
            show(f.p90_seconds),
            plan.tier.name,
            show(f.target_seconds)
        )
    })
}

/// Why a standby region could not take over now: each resource's kind
/// judges it, then the region itself (it does not answer).
fn standby_problems(plan: &Plan, window: Duration, row: &RegionStatus) -> Vec<String> {
    let region = row.region.as_str();
    let mut out: Vec<String> = (row.databases.iter())
        .flat_map(|db| db_problems(plan, window, region, db))
        .collect();
    out.extend(row.checks.iter().filter_map(|f: &Finding| {
        (f.problem.as_ref()).map(|p| match &f.fix {
            Some(fix) => format!("{} in {region}: {p} (fix: {fix})", f.resource),
            None => format!("{} in {region}: {p}", f.resource),
        })
    }));
    if let Some(why) = &row.unreachable {
        out.push(format!(
            "{region} does not answer ({why}): it cannot take over now"
        ));
        return out;
    }
    out.extend(row.compute.iter().flat_map(|g| g.problems.iter().cloned()));
    out
}

/// Why capacity group `g` in standby `region` could not take over now:
/// its kind's judgement of its size, and a status of its own that is not
/// `ACTIVE` (pure).
fn group_problems(plan: &Plan, region: &str, g: &ComputeStatus) -> Vec<String> {
    let capacity = plan.spec.resource(&g.id).and_then(|r| match r.shown() {
        Shown::Capacity(groups) => Some(groups),
        Shown::Data(_) | Shown::Traffic(_) | Shown::Steps { .. } => None,
    });
    let Some(groups) = capacity else {
        return Vec::new();
    };
    let at = (g.label, g.group.as_str(), region);
    let read = g.capacity.filter(|_| g.exists);
    let mut out =
        crate::steps::capacity::standby_problems(at, groups.scaling(), groups.active(), read);
    // A group with a status of its own (an EKS node group) serves, and
    // takes a scaling update, only when ACTIVE.
    if let Some(status) = g.status.as_deref().filter(|s| *s != "ACTIVE") {
        out.push(format!(
            "{} group {} in {region} is {status}, not ACTIVE",
            g.label, g.group
        ));
    }
    out
}

/// What the step that would move the resource says of its copy in
/// `region`: a copy promoted (the resource is an RPO source) must be a
/// replica within the RPO; one restored must be usable.
fn db_problems(plan: &Plan, window: Duration, region: &str, db: &DbStatus) -> Vec<String> {
    let Some(spec) = plan.spec.resource(&db.id) else {
        return Vec::new();
    };
    let copy = match (db.role.as_str(), db.state.as_deref()) {
        ("missing", _) => CopyRead::Missing,
        ("unreachable", _) => CopyRead::Unreachable,
        ("primary", Some(status)) => CopyRead::Found {
            primary: true,
            status,
        },
        ("replica", Some(status)) => CopyRead::Found {
            primary: false,
            status,
        },
        _ => CopyRead::Unreadable,
    };
    let instance = db.instance.as_str();
    match spec.rpo_source() {
        Some(source) => {
            let lag = lag_problem(plan, window, region, db, source.about().metric);
            crate::steps::promote_standby_problems((instance, region), copy, plan.name(), lag)
        }
        None => crate::steps::restore_standby_problems(instance, region, copy),
    }
}

/// The RPO gate's judgement of a replica's lag, as `status` says it.
fn lag_problem(
    plan: &Plan,
    window: Duration,
    region: &str,
    db: &DbStatus,
    metric: &str,
) -> Option<String> {
    let check = LagCheck {
        instance: &db.instance,
        region,
        lag_seconds: db.lag_seconds,
        window,
        tier: &plan.tier.name,
        rpo: plan.tier.rpo,
        accepted: None,
        point: db.restorable_point,
    };
    let unknown = format!(
        "no {metric} datapoints in the last {}",
        format_duration(window)
    );
    let problem = check.problem(&unknown)?;
    Some(match db.lag_seconds {
        None => format!("{problem}: a failover needs --accept-data-loss"),
        Some(_) => problem,
    })
}

/// One DNS row, or the problem that stands in for it.
fn dns_row(
    plan: &Plan,
    d: &dyn Points,
    read: DnsRead,
    dbs: &[(String, DbStatus)],
) -> Result<DnsStatus, String> {
    let (name, rtype, zone) = d.names();
    let records = read
        .map_err(|e| err_line(&e))?
        .ok_or_else(|| format!("zone {zone} of record {name} does not exist"))?;
    if records.is_empty() {
        return Err(format!("record {name} {rtype} does not exist in {zone}"));
    }
    let (values, points_to) = points_to(plan, d, &records, dbs);
    Ok(DnsStatus {
        id: d.id().to_string(),
        name: name.to_string(),
        values,
        points_to,
        switch_depends: None,
    })
}

/// A record's values as shown, and the region they point to (its traffic
/// role's rule, which `watch` uses too), endpoints from the rows.
fn points_to(
    plan: &Plan,
    d: &dyn Points,
    records: &[DnsRecord],
    dbs: &[(String, DbStatus)],
) -> (Vec<String>, Option<String>) {
    let endpoint = |db: &str, value: &str| {
        let copies = (dbs.iter()).map(|(region, s)| placement::CopyAt {
            id: &s.id,
            region,
            endpoint: s.endpoint.as_deref(),
            moves: s.endpoint_moves,
            own_names: &s.own_names,
            primary: s.role == "primary",
        });
        placement::followed_region(copies, db, value)
    };
    d.points_to(plan, records, &endpoint)
}

/// One evidence row.
fn evidence_row(b: BucketRead) -> EvidenceStatus {
    let (reachable, error) = match b.exists {
        Ok(Ok(exists)) => (Some(exists), None),
        Ok(Err(e)) => (None, Some(err_line(&e))),
        Err(bad_url) => (Some(false), Some(bad_url)),
    };
    EvidenceStatus {
        destination: b.destination,
        reachable,
        error,
    }
}

/// What an evidence row means for the plan.
fn evidence_problem(e: &EvidenceStatus) -> Option<String> {
    if e.reachable == Some(false) {
        Some(format!(
            "evidence bucket of {} does not exist",
            e.destination
        ))
    } else {
        e.error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Capacity, ComputeGroup, ErrorKind, LagReading};
    use crate::plan::kinds::CopyState;

    fn payments() -> Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .unwrap()
    }

    fn copy(id: &str, region: &str, role: DbRole) -> CopyState {
        CopyState {
            role,
            status: "available".into(),
            endpoint: Some(format!("{id}.fake.{region}.rds.amazonaws.com")),
            notes: Vec::new(),
            moves_with_primary: false,
            own_names: Vec::new(),
            restored_by: None,
        }
    }

    fn lag(seconds: Option<u64>) -> LagReading {
        LagReading {
            max: seconds.map(Duration::from_secs),
            latest: None,
            datapoints: usize::from(seconds.is_some()),
            window: Duration::from_secs(900),
        }
    }

    fn group(region: &str, name: &str, max: u32) -> GroupRead {
        let capacity = Capacity {
            min: 0,
            desired: 0,
            max,
        };
        GroupRead {
            id: "payments-api".into(),
            region: region.into(),
            name: name.into(),
            label: "compute",
            group: Ok(Some(ComputeGroup {
                name: name.into(),
                region: region.into(),
                capacity,
                in_service: 0,
                instances: 0,
                tags: Default::default(),
                status: None,
                notes: Vec::new(),
                target_groups: Vec::new(),
            })),
        }
    }

    fn cname(value: &str) -> Option<Vec<DnsRecord>> {
        Some(vec![DnsRecord::simple(
            "x".into(),
            "CNAME",
            Some(60),
            vec![value.into()],
        )])
    }

    /// The payments plan as `localstack/seed` leaves it: home active, the
    /// standby a replica `lag` seconds behind, its group able to take the
    /// active capacity.
    fn seeded(lag_seconds: Option<u64>) -> PlanReading {
        let (w, e) = ("us-west-2", "us-east-1");
        let db = |region: &str, instance: &str, role, lag| DbRead {
            id: "payments-db".into(),
            region: region.into(),
            instance: instance.into(),
            described: Ok(Some(copy(instance, region, role))),
            lag,
            notes: Vec::new(),
        };
        PlanReading {
            dbs: vec![
                db(w, "payments-db", DbRole::Primary, None),
                db(
                    e,
                    "payments-db-use1",
                    DbRole::Replica("payments-db".into()),
                    Some(Ok(lag(lag_seconds))),
                ),
            ],
            groups: vec![
                group(w, "payments-api-usw2", 8),
                group(e, "payments-api-use1", 8),
            ],
            dns: vec![
                Ok(cname("api-usw2.example.com.")),
                Ok(cname("payments-db.fake.us-west-2.rds.amazonaws.com")),
            ],
            evidence: Vec::new(),
            checks: [(e.to_string(), Vec::new())].into(),
            controls: Vec::new(),
            depends: BTreeMap::new(),
        }
    }

    const WINDOW: Duration = Duration::from_secs(900);

    #[test]
    fn a_seeded_plan_is_ready_with_home_active() {
        let s = assess(&payments(), WINDOW, seeded(Some(3)));
        assert!(s.ready, "{s:#?}");
        assert_eq!(s.active_region, "us-west-2");
        assert_eq!(s.dns[1].points_to.as_deref(), Some("us-west-2"));
        assert_eq!(s.regions[1].role, "standby");
        assert_eq!(s.regions[1].databases[0].within_rpo, Some(true));
    }

    #[test]
    fn a_lag_above_the_rpo_and_a_small_group_are_the_standby_s_problems() {
        let mut r = seeded(Some(1200));
        r.groups[1] = group("us-east-1", "payments-api-use1", 2);
        let s = assess(&payments(), WINDOW, r);
        assert!(!s.ready);
        let p = &s.regions[1].problems;
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("20m") && p[0].contains("RPO"), "{p:?}");
        assert_eq!(
            p[1],
            "compute group payments-api-use1 in us-east-1 has max 2 below the active capacity 4"
        );
    }

    #[test]
    fn an_unknown_lag_needs_accept_data_loss() {
        let s = assess(&payments(), WINDOW, seeded(None));
        let p = &s.regions[1].problems;
        assert!(
            p[0].ends_with(": a failover needs --accept-data-loss"),
            "{p:?}"
        );
    }

    #[test]
    fn a_region_that_does_not_answer_cannot_take_over_and_its_groups_are_not_judged() {
        let mut r = seeded(Some(3));
        let down = CloudError::new(
            "autoscaling",
            "DescribeAutoScalingGroups",
            "payments-api-use1",
            "us-east-1",
            ErrorKind::Connection,
            "connection refused",
        );
        r.groups[1].group = Err(down);
        let s = assess(&payments(), WINDOW, r);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let east = &s.regions[1];
        assert!(east.unreachable.is_some());
        assert_eq!(east.problems.len(), 1, "{:?}", east.problems);
        assert!(east.problems[0].contains("does not answer"));
    }

    #[test]
    fn dns_pointing_at_the_standby_makes_it_active() {
        let mut r = seeded(Some(3));
        r.dns[0] = Ok(cname("api-use1.example.com."));
        r.dns[1] = Ok(cname("payments-db-use1.fake.us-east-1.rds.amazonaws.com"));
        let s = assess(&payments(), WINDOW, r);
        assert_eq!(s.active_region, "us-east-1");
        // The old home is a primary, not a replica: it needs reprotecting.
        assert!(s.regions[0].problems[0].contains("reprotect"), "{s:#?}");
    }

    /// After a restore failover the old primary is a primary beside the
    /// restored one, and no record says which serves: the one drctl
    /// restored last does; a failback's later restore takes it back.
    #[test]
    fn of_two_primaries_and_no_record_the_one_restored_last_is_active() {
        let after = || {
            let mut r = seeded(Some(3));
            r.dns = vec![Ok(None), Ok(None)];
            let mut c = copy("payments-db-use1", "us-east-1", DbRole::Primary);
            c.restored_by = Some("20261130T072213Z-payments-0001".into());
            r.dbs[1].described = Ok(Some(c));
            r.dbs[1].lag = None;
            r
        };
        assert_eq!(
            assess(&payments(), WINDOW, after()).active_region,
            "us-east-1"
        );
        let mut back = after();
        let mut home = copy("payments-db", "us-west-2", DbRole::Primary);
        home.restored_by = Some("20261130t081500z-payments-0002".into());
        back.dbs[0].described = Ok(Some(home));
        assert_eq!(assess(&payments(), WINDOW, back).active_region, "us-west-2");
    }

    #[test]
    fn a_missing_zone_or_record_is_a_plan_problem() {
        let mut r = seeded(Some(3));
        r.dns[0] = Ok(None);
        r.dns[1] = Ok(Some(Vec::new()));
        let s = assess(&payments(), WINDOW, r);
        assert_eq!(
            s.problems,
            [
                "zone example.com. of record api.example.com. does not exist",
                "record payments-db.example.com. CNAME does not exist in example.com."
            ]
        );
        assert!(!s.ready);
    }
}
