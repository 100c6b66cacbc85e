//! `drctl drill sweep`: finds what drills left behind without their
//! journals (a laptop lost mid-drill, a journal deleted) by the tags and
//! names every drill resource carries, and removes what has expired.
//!
//! Only expired resources are touched: a drill still running has not
//! reached its expiry (its start plus its maximum duration plus
//! [`super::SWEEP_GRACE`]), so a sweep never races a live drill. The sweep
//! is journaled as a run of its own (`kind = sweep`): what it found, then
//! each removal with its proof, like a drill's cleanup.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cloud::{CloudError, Clouds};
use crate::journal::{Cleaned, Temp};
use crate::plan::Plan;
use crate::steps::drill_names::{
    RECORD_PREFIX, RUN_TAG, SWEEP_GRACE, expiry, plan_max_duration, short_id,
    started_from_short_id, temp_database_id,
};

/// A drill resource a sweep found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The resource.
    pub resource: Temp,
    /// The drill that made it, when its tags or name say.
    pub run: Option<String>,
    /// When it expires (or expired).
    pub expires: Option<DateTime<Utc>>,
    /// Whether it has expired (only expired resources are removed).
    pub expired: bool,
}

/// Whether `id` in `region` is the temporary database drill `run` made of
/// one of `plans`' databases (its name is derived from the run and the real
/// replica it copies, so this needs no journal).
fn copies_a_plan_database(plans: &[Plan], region: &str, run: &str, id: &str) -> bool {
    plans
        .iter()
        .flat_map(|p| p.spec.database.iter())
        .filter_map(|d| d.regions.get(region))
        .any(|base| temp_database_id(run, base) == id)
}

/// Finds every drill resource of `plans` in every region of each plan:
/// temporary databases and raised groups by their tags, drill records by
/// their names. Regions that do not answer are reported, not fatal.
pub async fn find(
    clouds: &Clouds,
    plans: &[Plan],
    now: DateTime<Utc>,
) -> (Vec<Found>, Vec<CloudError>) {
    let mut found: Vec<Found> = Vec::new();
    let mut errors = Vec::new();
    let mut regions: Vec<&str> = plans
        .iter()
        .flat_map(|p| p.regions().iter().map(String::as_str))
        .collect();
    regions.sort_unstable();
    regions.dedup();
    let expired = |e: Option<DateTime<Utc>>| e.is_some_and(|e| e <= now);
    for region in &regions {
        match clouds.database.list_instances(region).await {
            Ok(list) => {
                for i in list {
                    let Some(run) = i.tags.get(RUN_TAG) else {
                        continue;
                    };
                    // Only a copy of one of these plans' databases: another
                    // team's drill (or another plan's) is not ours to sweep,
                    // even with --all.
                    if !copies_a_plan_database(plans, region, run, &i.id) {
                        continue;
                    }
                    let expires = expiry(&i.tags);
                    found.push(Found {
                        resource: Temp::Database {
                            region: region.to_string(),
                            id: i.id.clone(),
                        },
                        run: Some(run.clone()),
                        expires,
                        expired: expired(expires),
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    for p in plans {
        for c in &p.spec.compute {
            for (region, group) in c.regions.iter() {
                match clouds.compute.describe_group(region, group).await {
                    Ok(Some(g)) => {
                        let Some(run) = g.tags.get(RUN_TAG) else {
                            continue;
                        };
                        let expires = expiry(&g.tags);
                        let t = Temp::Capacity {
                            region: region.clone(),
                            group: group.clone(),
                        };
                        if !found.iter().any(|f| f.resource == t) {
                            found.push(Found {
                                resource: t,
                                run: Some(run.clone()),
                                expires,
                                expired: expired(expires),
                            });
                        }
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        // A record carries no tags: its drill's expiry is that of the same
        // drill's tagged resources when they are still there (they know a
        // --max-duration), else the plan's own budget from the name's time.
        let max = plan_max_duration(p);
        let mut zones: Vec<&str> = p.spec.dns.iter().map(|d| d.zone.as_str()).collect();
        zones.sort_unstable();
        zones.dedup();
        for zone_name in zones {
            let zone = match clouds.dns.find_zone(zone_name).await {
                Ok(Some(z)) => z,
                Ok(None) => continue,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let records = match clouds.dns.list_records(&zone, "").await {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for r in records {
                let Some(rest) = r.name.strip_prefix(RECORD_PREFIX) else {
                    continue;
                };
                let Some((short, under)) = rest.split_once('.') else {
                    continue;
                };
                // Only drill copies of this plan's own records.
                let ours = p.spec.dns.iter().any(|d| {
                    d.name
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(under.trim_end_matches('.'))
                });
                let Some(started) = started_from_short_id(short) else {
                    continue;
                };
                if !ours {
                    continue;
                }
                let tagged = found
                    .iter()
                    .filter(|f| f.run.as_deref().is_some_and(|run| short_id(run) == short))
                    .filter_map(|f| f.expires)
                    .max();
                let expires = tagged.or_else(|| {
                    chrono::Duration::from_std(max + SWEEP_GRACE)
                        .ok()
                        .map(|d| started + d)
                });
                let t = Temp::Record {
                    zone: zone.name.clone(),
                    name: r.name.clone(),
                    rtype: r.rtype.clone(),
                };
                if !found.iter().any(|f| f.resource == t) {
                    found.push(Found {
                        resource: t,
                        run: None,
                        expires,
                        expired: expired(expires),
                    });
                }
            }
        }
    }
    (found, errors)
}

/// Removes every expired resource in `found` (records first, then
/// databases, then capacity), each proven by a read; returns one
/// [`Cleaned`] per resource removed or tried.
pub async fn sweep(clouds: &Clouds, found: &[Found], poll: (Duration, Duration)) -> Vec<Cleaned> {
    let mut todo: Vec<&Found> = found.iter().filter(|f| f.expired).collect();
    todo.sort_by_key(|f| match f.resource {
        Temp::Record { .. } => 0,
        Temp::Database { .. } => 1,
        Temp::Capacity { .. } => 2,
    });
    let deadline = Instant::now() + Duration::from_secs(10 * 60);
    let mut out = Vec::new();
    for f in todo {
        let result = match &f.resource {
            Temp::Database { region, id } => {
                crate::steps::drill_database::remove(clouds, region, id, None, poll, deadline).await
            }
            Temp::Capacity { region, group } => {
                crate::steps::drill_scale::restore(clouds, region, group, None, false).await
            }
            Temp::Record { zone, name, rtype } => {
                crate::steps::drill_dns::remove(clouds, zone, name, rtype, poll, deadline).await
            }
        };
        out.push(match result {
            Ok((result, detail)) => Cleaned {
                resource: f.resource.clone(),
                result,
                detail,
            },
            Err(e) => Cleaned {
                resource: f.resource.clone(),
                result: super::CleanupResult::Failed,
                detail: e.to_string(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<Plan> {
        crate::plan::reference()
    }

    /// Regression: `drill sweep --plan payments --all` deleted the temporary
    /// database of a drill of another plan (another fixture's, in the
    /// tests) running in the same region.
    #[test]
    fn sweep_of_one_plan_leaves_another_plans_temporary_database() {
        let all = plans();
        let payments: Vec<Plan> = all
            .iter()
            .filter(|p| p.name() == "payments")
            .cloned()
            .collect();
        let run = "20261123T004536Z-payments-9d10";
        let ours = crate::steps::drill_names::temp_database_id(run, "payments-db-use1");
        assert!(copies_a_plan_database(&payments, "us-east-1", run, &ours));
        // The same name in the wrong region, another run's name, or a copy
        // of another plan's replica is not this sweep's.
        assert!(!copies_a_plan_database(&payments, "us-west-2", run, &ours));
        let other_run = "20261123T004536Z-payments-aaaa";
        assert!(!copies_a_plan_database(
            &payments,
            "us-east-1",
            other_run,
            &ours
        ));
        let ledger = crate::steps::drill_names::temp_database_id(run, "ledger-db-use1");
        assert!(!copies_a_plan_database(
            &payments,
            "us-east-1",
            run,
            &ledger
        ));
        assert!(copies_a_plan_database(&all, "us-east-1", run, &ledger));
    }
}
