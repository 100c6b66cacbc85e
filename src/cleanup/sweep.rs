//! `drctl drill sweep`: finds what drills left behind without their
//! journals (a laptop lost mid-drill, a journal deleted) by the tags and
//! names every drill resource carries, and removes what has expired. A
//! group raised by the generic `drill-raise` (an Auto Scaling group's or
//! an EKS node group's bounds, an ECS service's count, a Cloud Run
//! service's floor) carries the drill's marks (tags, labels), the size to
//! return to among them: it is found by them through its kind's capacity
//! role. A raised managed instance group carries no marks: it is found
//! only by its drill's journal, in the state
//! the sweep reads (`steps::capacity`, the same for every capacity kind).
//!
//! Only expired resources are touched: a drill still running has not
//! reached its expiry (its start plus its maximum duration plus
//! [`SWEEP_GRACE`]), so a sweep never races a live drill. A raised group
//! is lowered only on its drill's journal or, for a group `drill-raise`
//! marked, on the drill's marks still on it, and never after a failover
//! scaled it ([`super::owner`]). The sweep
//! is journaled as a run of its own (`kind = sweep`): what it found, then
//! each removal with its proof, like a drill's cleanup.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::CapacityOwner;
use super::owner::{DrillJournal, Later};
use crate::cloud::{CloudError, Clouds, ObjectUrl, control};
use crate::journal::{Cleaned, JournalStore, Temp};
use crate::plan::Plan;
use crate::plan::kinds::Shown;
use crate::steps::capacity;
use crate::steps::drill_names::{
    CONTROL_INFIX, RECORD_PREFIX, RUN_TAG, SWEEP_GRACE, drill_of_control, expiry,
    plan_max_duration, short_id, started_from_short_id, temp_cluster_id, temp_database_id,
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

/// Whether `id` in `region` is the copy drill `run` made of one of
/// `plans`' Aurora global databases (named from the run and the member
/// cluster it clones, so this needs no journal either).
fn copies_a_plan_cluster(plans: &[Plan], region: &str, run: &str, id: &str) -> bool {
    plans
        .iter()
        .flat_map(|p| p.spec.global_database.iter())
        .filter_map(|g| g.regions.get(region))
        .any(|member| temp_cluster_id(run, member) == id)
}

/// Finds every drill resource of `plans` in every region of each plan:
/// temporary databases, Aurora drill copies and raised groups by their
/// tags, Cloud SQL clones and drill records (Route 53's and Cloud DNS's)
/// by their names, drill controls by their keys (beside production's) and
/// drill health checks by the drill control they read; raised groups of
/// every capacity kind by the journals in `journals` of the drills that
/// raised them (and every kind's but a managed instance group's by its
/// marks too). Regions that do not answer are reported, not fatal; so are
/// journals that cannot be read.
pub async fn find(
    clouds: &Clouds,
    plans: &[Plan],
    journals: &dyn JournalStore,
    now: DateTime<Utc>,
) -> (Vec<Found>, Vec<CloudError>) {
    let mut regions: Vec<&str> = plans
        .iter()
        .flat_map(|p| p.regions().iter().map(String::as_str))
        .collect();
    regions.sort_unstable();
    regions.dedup();
    let mut f = Finds {
        clouds,
        journals,
        now,
        found: Vec::new(),
        errors: Vec::new(),
        checks: None,
        budgets: BTreeMap::new(),
        budgets_unread: false,
    };
    for region in &regions {
        f.databases(plans, region).await;
        f.clusters(plans, region).await;
    }
    for p in plans {
        f.marked(p).await;
        f.records(p).await;
        f.cloud_records(p).await;
        f.controls(p).await;
    }
    f.raised_groups(plans, journals).await;
    // Last: a clone's expiry is its drill's tagged resources', found above.
    f.sql_clones(plans).await;
    (f.found, f.errors)
}

/// What a sweep has found so far, and the regions that did not answer.
struct Finds<'c> {
    clouds: &'c Clouds,
    /// The state's journals: a drill's own budget when it is there.
    journals: &'c dyn JournalStore,
    now: DateTime<Utc>,
    found: Vec<Found>,
    errors: Vec<CloudError>,
    /// Route 53's health checks, listed once (when a plan has controls).
    checks: Option<Vec<crate::cloud::HealthCheck>>,
    /// The `--max-duration` each drill's journal says, by short id, read
    /// once (`None`: no journal of it, or none said).
    budgets: BTreeMap<String, Option<Duration>>,
    /// Whether the journals could not be read for a budget (said once; no
    /// untagged resource expires after that).
    budgets_unread: bool,
}

impl Finds<'_> {
    fn expired(&self, e: Option<DateTime<Utc>>) -> bool {
        e.is_some_and(|e| e <= self.now)
    }

    /// When a drill resource without tags, of the drill whose short id is
    /// `short`, expires ([`drill_expiry`]): with the same drill's tagged
    /// resources when they are still there; else with the
    /// `--max-duration` its journal says, when the journal is in the
    /// state and says more than `max`, its plan's budget (a drill run for
    /// longer keeps its records and clones until its own end); else by
    /// `max`. A state whose journals cannot be read leaves it unexpired,
    /// and says why.
    async fn untagged_expiry(&mut self, short: &str, max: Duration) -> Option<DateTime<Utc>> {
        if let Some(tagged) = tagged_expiry(&self.found, short) {
            return Some(tagged);
        }
        if self.budgets_unread {
            return None;
        }
        if !self.budgets.contains_key(short) {
            // Only the journals of this drill's short id are read (a list
            // of the state, then those): a sweep's few leftover drills.
            let read = crate::journal::runs::read_runs(self.journals, |id| short_id(id) == short);
            match read.await {
                Ok(read) => {
                    self.budgets
                        .insert(short.to_string(), journaled_budget(&read.runs));
                }
                Err(e) => {
                    self.errors.push(journals_unread(e));
                    self.budgets_unread = true;
                    return None;
                }
            }
        }
        // Never shorter than the plan's: a journal (one a writer of the
        // state forged, with no run keys listed) can keep a leftover
        // longer, never make a live drill's resource expire early.
        let journaled = self.budgets.get(short).copied().flatten();
        drill_expiry(&self.found, short, journaled.map_or(max, |j| j.max(max)))
    }

    /// Temporary databases in `region`, by their drill tags: only copies of
    /// these plans' databases (another team's drill is not ours to sweep,
    /// even with --all).
    async fn databases(&mut self, plans: &[Plan], region: &str) {
        let list = match self.clouds.database.list_instances(region).await {
            Ok(list) => list,
            Err(e) => return self.errors.push(e),
        };
        for i in list {
            let Some(run) = i.tags.get(RUN_TAG) else {
                continue;
            };
            if !copies_a_plan_database(plans, region, run, &i.id) {
                continue;
            }
            let expires = expiry(&i.tags);
            self.found.push(Found {
                resource: Temp::Database {
                    region: region.to_string(),
                    id: i.id.clone(),
                },
                run: Some(run.clone()),
                expires,
                expired: self.expired(expires),
            });
        }
    }

    /// Aurora drill copies in `region`, by their drill tags: only copies of
    /// these plans' global databases' members.
    async fn clusters(&mut self, plans: &[Plan], region: &str) {
        if !plans.iter().any(|p| !p.spec.global_database.is_empty()) {
            return;
        }
        let list = match self.clouds.aurora.list_clusters(region).await {
            Ok(list) => list,
            Err(e) => return self.errors.push(e),
        };
        for c in list {
            let Some(run) = c.tags.get(RUN_TAG) else {
                continue;
            };
            if !copies_a_plan_cluster(plans, region, run, &c.id) {
                continue;
            }
            let expires = expiry(&c.tags);
            self.found.push(Found {
                resource: Temp::Cluster {
                    region: region.to_string(),
                    id: c.id.clone(),
                },
                run: Some(run.clone()),
                expires,
                expired: self.expired(expires),
            });
        }
    }

    /// Groups of every kind the capacity role's actions serve that carry
    /// a drill's marks (`drill-raise` marks the group before it raises it):
    /// found and returned without the drill's journal, from the size the
    /// marks hold.
    async fn marked(&mut self, p: &Plan) {
        for r in crate::plan::kinds::each(&p.spec) {
            let (Shown::Capacity(g), Some(scaling)) = (r.shown(), r.kind().scaling()) else {
                continue;
            };
            // A kind whose groups carry no marks has none to find: its
            // drills' raises are found by their journals alone.
            if !scaling.carries_marks() {
                continue;
            }
            for region in p.regions() {
                let Some((at, group)) = g.raised_group(region) else {
                    continue;
                };
                let read = match scaling.read(self.clouds, &at, &group).await {
                    Ok(Some(read)) => read,
                    Ok(None) => continue,
                    Err(e) => {
                        self.errors.push(e);
                        continue;
                    }
                };
                let Some((run, restore)) = crate::steps::drill_raise::marked(&read) else {
                    continue;
                };
                let expires = expiry(&read.marks);
                let t = Temp::Raised {
                    kind: r.kind(),
                    region: at,
                    group,
                    restore,
                };
                if !self.found.iter().any(|f| f.resource == t) {
                    self.found.push(Found {
                        resource: t,
                        run: Some(run),
                        expires,
                        expired: self.expired(expires),
                    });
                }
            }
        }
    }

    /// Standby groups of every capacity kind that a drill raised and no
    /// cleanup returned, by the journals of the drills that raised them
    /// (every kind's but a managed instance group's says so in its marks
    /// too, `marked`). Those are read only for a standby group that does not read
    /// at its plan's standby size (`steps::capacity`): nothing else can be
    /// a drill's raise still in effect. Without the drill's journal,
    /// nothing is found here.
    async fn raised_groups(&mut self, plans: &[Plan], journals: &dyn JournalStore) {
        let (off, errors) = capacity::off_standby(self.clouds, plans).await;
        self.errors.extend(errors);
        if off.is_empty() {
            return;
        }
        let left = match capacity::left_raised(journals, "").await {
            Ok(left) => left,
            Err(e) => return self.errors.push(journals_unread(e)),
        };
        for l in left {
            let Some(o) = off
                .iter()
                .find(|o| l.temp.raised_group() == Some((o.region.as_str(), o.group.clone())))
            else {
                continue;
            };
            let Some(plan) = plans.iter().find(|p| p.name() == o.plan) else {
                continue;
            };
            let max = l.max_duration.unwrap_or_else(|| plan_max_duration(plan));
            let expires = crate::plan::duration::after(l.started, max.saturating_add(SWEEP_GRACE));
            if !self.found.iter().any(|f| f.resource == l.temp) {
                self.found.push(Found {
                    resource: l.temp,
                    run: Some(l.run),
                    expires: Some(expires),
                    expired: expires <= self.now,
                });
            }
        }
    }

    /// Drill records of the plan's own records (or of a level of a
    /// data-plane switch's failover chain), by their names. A record carries
    /// no tags: its drill's expiry is that of the same drill's tagged
    /// resources when they are still there (they know a --max-duration),
    /// else as [`Finds::untagged_expiry`] says
    /// (its drill's journaled budget, else the plan's).
    async fn records(&mut self, p: &Plan) {
        let max = plan_max_duration(p);
        let mut zones: Vec<&str> = p.spec.dns.iter().map(|d| d.zone.as_str()).collect();
        zones.sort_unstable();
        zones.dedup();
        for zone_name in zones {
            let zone = match self.clouds.dns.find_zone(zone_name).await {
                Ok(Some(z)) => z,
                Ok(None) => continue,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let records = match self.clouds.dns.list_records(&zone, "").await {
                Ok(r) => r,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            for r in records {
                let names = p.spec.dns.iter().map(|d| d.name.as_str());
                let Some(short) = drill_record_of(&r.name, names) else {
                    continue;
                };
                let t = Temp::Record {
                    zone: zone.name.clone(),
                    name: r.name.clone(),
                    rtype: r.rtype.clone(),
                };
                let expires = self.untagged_expiry(short, max).await;
                untagged(&mut self.found, t, expires, self.now);
            }
        }
    }

    /// Drill record sets of the plan's `[[cloud_dns]]` records, in their
    /// managed zones, by their names (`drill-<short id>.<name>`, as
    /// `drill-cloud-dns` names them: a record set carries no tags). Their
    /// expiry is a Route 53 drill record's: that of the same drill's
    /// tagged resources when they are still there, else the plan's own
    /// budget from the name's time, or its drill's journaled one when
    /// longer ([`Finds::untagged_expiry`]).
    async fn cloud_records(&mut self, p: &Plan) {
        let max = plan_max_duration(p);
        let mut zones: Vec<(&str, &str)> = (p.spec.cloud_dns.iter())
            .map(|d| (d.project.as_str(), d.zone.as_str()))
            .collect();
        zones.sort_unstable();
        zones.dedup();
        for (project, zone) in zones {
            let sets = match self.clouds.cloud_dns.list_record_sets(project, zone).await {
                Ok(sets) => sets,
                // No zone, no drill record in it (as a Route 53 zone not
                // found is skipped).
                Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            for r in sets {
                let names = (p.spec.cloud_dns.iter())
                    .filter(|d| (d.project.as_str(), d.zone.as_str()) == (project, zone))
                    .map(|d| d.name.as_str());
                let Some(short) = drill_record_of(&r.name, names) else {
                    continue;
                };
                let expires = self.untagged_expiry(short, max).await;
                let t = Temp::CloudRecord {
                    project: project.to_string(),
                    zone: zone.to_string(),
                    name: r.name.clone(),
                    rtype: r.rtype.clone(),
                };
                untagged(&mut self.found, t, expires, self.now);
            }
        }
    }

    /// Cloud SQL drill clones of the plans' `[[cloud_sql]]` resources, by
    /// their names (`drill-<short id>-<instance>`, as `drill-sql` names
    /// them): Cloud SQL keeps no tags a drill writes, so a clone is a
    /// drill's when its name is exactly the one a drill of that short id
    /// makes of one of the plans' instances; another team's `drill-`
    /// instance is not ours to sweep. Its expiry is that of the same
    /// drill's tagged resources when they are still there, else the plan's
    /// own budget from the name's time, or its drill's journaled one when
    /// longer ([`Finds::untagged_expiry`]).
    async fn sql_clones(&mut self, plans: &[Plan]) {
        let mut projects: Vec<&str> = (plans.iter())
            .flat_map(|p| p.spec.cloud_sql.iter().map(|c| c.project.as_str()))
            .collect();
        projects.sort_unstable();
        projects.dedup();
        for project in projects {
            let list = match self.clouds.cloud_sql.list_sql(project).await {
                Ok(list) => list,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            // A region Cloud SQL could not reach may hold a clone: said as
            // a region that did not answer, never taken for "none there".
            for (region, why) in &list.unreachable {
                self.errors.push(CloudError::new(
                    "sqladmin",
                    "instances.list",
                    project,
                    region,
                    crate::cloud::ErrorKind::Server,
                    format!("Cloud SQL could not reach this region, so its instances were not listed (REGION_UNREACHABLE: {why})"),
                ));
            }
            for i in list.instances {
                let Some(short) = short_id_of_copy(&i.name) else {
                    continue;
                };
                let of = |p: &&Plan| {
                    (p.spec.cloud_sql.iter())
                        .filter(|c| c.project == project)
                        .flat_map(|c| c.regions.values())
                        .any(|base| is_copy_of(&i.name, short, base))
                };
                let Some(plan) = plans.iter().find(of) else {
                    continue;
                };
                let expires = self.untagged_expiry(short, plan_max_duration(plan)).await;
                let t = Temp::SqlClone {
                    region: i.region.clone(),
                    project: project.to_string(),
                    name: i.name.clone(),
                };
                untagged(&mut self.found, t, expires, self.now);
            }
        }
    }

    /// A data-plane switch's drill copies: controls beside production's (by
    /// their keys) and the health checks that read them.
    async fn controls(&mut self, p: &Plan) {
        let max = plan_max_duration(p);
        for d in p.spec.dns.iter().filter(|d| !d.controls.is_empty()) {
            if self.checks.is_none() {
                self.checks = Some(match self.clouds.dns.list_health_checks().await {
                    Ok(c) => c,
                    Err(e) => {
                        self.errors.push(e);
                        Vec::new()
                    }
                });
            }
            for (region, url) in &d.controls {
                let Ok(u) = ObjectUrl::parse(url) else {
                    continue;
                };
                let base = u.to_string();
                let mut temps = Vec::new();
                let beside = ObjectUrl {
                    key: format!("{}{CONTROL_INFIX}", u.key),
                    ..u.clone()
                };
                match self.clouds.objects.list(region, &beside, false).await {
                    Ok(listing) => {
                        temps.extend(listing.keys.into_iter().map(|key| Temp::Control {
                            region: region.clone(),
                            url: ObjectUrl { key, ..u.clone() }.to_string(),
                        }))
                    }
                    Err(e) => self.errors.push(e),
                }
                temps.extend(
                    (self.checks.iter().flatten())
                        .filter(|h| h.search == control::SERVE_MARKER)
                        .filter_map(control::control_of)
                        .filter(|(r, _)| r == region)
                        .map(|(_, c)| Temp::HealthCheck {
                            region: region.clone(),
                            control: c.to_string(),
                        }),
                );
                for t in temps {
                    let (Temp::Control { url: c, .. } | Temp::HealthCheck { control: c, .. }) = &t
                    else {
                        continue;
                    };
                    let Some(short) = drill_of_control(&base, c) else {
                        continue;
                    };
                    let expires = self.untagged_expiry(short, max).await;
                    untagged(&mut self.found, t, expires, self.now);
                }
            }
        }
    }
}

/// The drills' journals could not be read, as a sweep reports it.
fn journals_unread(e: crate::journal::JournalError) -> CloudError {
    CloudError::new(
        "state",
        "read journals",
        "drill journals",
        "state",
        crate::cloud::ErrorKind::Server,
        format!(
            "the drills' journals, which name raised groups and drills' budgets, cannot be read: {e}"
        ),
    )
}

/// The `--max-duration` a drill's journal among `runs` says it was given
/// (pure; `None`: none of them is a drill's, or it ran on its plan's).
fn journaled_budget(runs: &[(String, Vec<crate::journal::event::Record>)]) -> Option<Duration> {
    use crate::journal::event::{Event, RunKind};
    runs.iter()
        .find_map(|(_, records)| match records.first().map(|r| &r.event) {
            Some(Event::RunStarted {
                kind: RunKind::Drill,
                flags,
                ..
            }) => (crate::journal::RunFlags::of(flags)
                .ok()?
                .max_duration_seconds)
                .map(Duration::from_secs),
            _ => None,
        })
}

/// Adds `t`, a resource found by its name (no tags, no run), once.
fn untagged(found: &mut Vec<Found>, t: Temp, expires: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    if !found.iter().any(|f| f.resource == t) {
        found.push(Found {
            resource: t,
            run: None,
            expires,
            expired: expires.is_some_and(|e| e <= now),
        });
    }
}

/// The short id of the drill whose temporary database `name` would be
/// (`drill-<short id>-<base>`, [`temp_database_id`]), when its name has
/// that form: the name alone, not yet that it is one of a plan's.
fn short_id_of_copy(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("drill-")?;
    // `20261127t052145z-2e70`: the run's time, then its suffix.
    let stamp = rest.get(..16)?;
    let tail = rest.get(16..)?.strip_prefix('-')?;
    let suffix = tail.split('-').next().filter(|s| !s.is_empty())?;
    started_from_short_id(stamp)?;
    rest.get(..16 + 1 + suffix.len())
}

/// Whether `name` is the temporary database a drill of short id `short`
/// makes of instance `base` (a run id of that short id makes the same
/// name: only its time and suffix go into it).
fn is_copy_of(name: &str, short: &str, base: &str) -> bool {
    let Some((stamp, suffix)) = short.split_once('-') else {
        return false;
    };
    temp_database_id(&format!("{stamp}-copy-{suffix}"), base) == name
}

/// The short id of the drill whose record `name` is (`drill-<short
/// id>.<name>`, a level of a failover chain's included), when it is one
/// under one of `names` (a plan's record names) with a drill's time in it:
/// the one rule Route 53's and Cloud DNS's drill records are found by.
fn drill_record_of<'a, 'n>(
    name: &'a str,
    mut names: impl Iterator<Item = &'n str>,
) -> Option<&'a str> {
    let (short, under) = name.strip_prefix(RECORD_PREFIX)?.split_once('.')?;
    let under = level_base(under).trim_end_matches('.');
    let ours = names.any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(under));
    (ours && started_from_short_id(short).is_some()).then_some(short)
}

/// The name a level of a failover chain stands for: `drctl-failover-K.<name>`
/// is `<name>`'s (a drill copies the whole chain).
fn level_base(name: &str) -> &str {
    match name.split_once('.') {
        Some((label, rest)) if label.starts_with("drctl-failover-") => rest,
        _ => name,
    }
}

/// The latest expiry among the tagged resources found of the drill whose
/// short id is `short` (pure; `None`: none is left).
fn tagged_expiry(found: &[Found], short: &str) -> Option<DateTime<Utc>> {
    (found.iter())
        .filter(|f| f.run.as_deref().is_some_and(|run| short_id(run) == short))
        .filter_map(|f| f.expires)
        .max()
}

/// When a drill resource without tags expires (pure): with the same
/// drill's tagged resources when they are still there (they know a
/// --max-duration), else the budget `max` (the plan's, or the drill's
/// journaled one: [`Finds::untagged_expiry`]) from the short id's time.
fn drill_expiry(found: &[Found], short: &str, max: Duration) -> Option<DateTime<Utc>> {
    tagged_expiry(found, short).or_else(|| {
        let started = started_from_short_id(short)?;
        Some(crate::plan::duration::after(
            started,
            max.saturating_add(SWEEP_GRACE),
        ))
    })
}

/// Removes every expired resource in `found` (in [`Temp::removal_rank`]
/// order: records first), each proven by a read; returns one
/// [`Cleaned`] per resource removed or tried.
///
/// A raised group is lowered only when the journal of the drill its tags
/// name (in `journals`, the state's) is there and names it, and no
/// failover of `plans` scaled it since that drill started (read right
/// before the group is touched, [`super::owner::swept_capacity`]); after
/// such a failover its tags are stale and come off, the capacity stays.
/// Without the journal it is left as it is, and said so, unless the
/// drill's marks are still on it (a group `drill-raise` marked: every
/// failover takes them off before it touches the group).
pub async fn sweep(
    clouds: &Clouds,
    found: &[Found],
    plans: &[Plan],
    journals: &dyn JournalStore,
    poll: (Duration, Duration),
) -> Vec<Cleaned> {
    let mut todo: Vec<&Found> = found.iter().filter(|f| f.expired).collect();
    todo.sort_by_key(|f| f.resource.removal_rank());
    let deadline = Instant::now() + Duration::from_secs(10 * 60);
    let mut out = Vec::new();
    for f in todo {
        let owner = match (&f.resource, f.run.as_deref()) {
            (t, Some(run)) if !t.drill_only() => {
                capacity_owner((clouds, plans), journals, run, t).await
            }
            (t, None) if !t.drill_only() => {
                CapacityOwner::Unknown("no drill tag names the run that raised it".into())
            }
            _ => CapacityOwner::Drill("a drill's own resource".into()),
        };
        out.push(
            super::dispatch(
                &f.resource,
                clouds,
                f.run.as_deref(),
                &owner,
                poll,
                deadline,
            )
            .await,
        );
    }
    out
}

/// Reads what decides who owns the group `raised` names, raised by drill
/// `run`: that drill's journal, then the runs started since it, and the
/// drill's marks on the group where its kind has them.
async fn capacity_owner(
    (clouds, plans): (&Clouds, &[Plan]),
    journals: &dyn JournalStore,
    run: &str,
    raised: &Temp,
) -> CapacityOwner {
    let Some((region, group)) = raised.raised_group() else {
        return CapacityOwner::Unknown(format!("{raised} is no raised group"));
    };
    let drill = match capacity::records_of(journals, run).await {
        Ok(Some(records)) => DrillJournal::Read(records),
        Ok(None) => DrillJournal::Missing,
        Err(e) => DrillJournal::Unreadable(e.to_string()),
    };
    let vouch = marks_vouch((clouds, plans), raised, run).await;
    let marked = vouch == Ok(true);
    let since = match &drill {
        DrillJournal::Read(records) => records.first().map(|r| r.at),
        // The drill's start, from its run id, for the runs since.
        _ if marked => started_from_run_id(run),
        _ => None,
    };
    let later = match since {
        Some(since) => {
            let steps = crate::runs::drill::scale_steps_of(plans, raised);
            super::owner::scalers_since(journals, since, &steps, region, run).await
        }
        None => Later::NotRead,
    };
    match super::owner::swept_capacity(run, (region, &group), &drill, &later, marked) {
        // A read that failed is why the marks could not stand in: said.
        CapacityOwner::Unknown(why) => match vouch {
            Err(read) => CapacityOwner::Unknown(format!(
                "{why} (its drill marks could not be checked: {read})"
            )),
            Ok(_) => CapacityOwner::Unknown(why),
        },
        owner => owner,
    }
}

/// When run `run` started, from its id (`20261122T192005Z-<plan>-<suffix>`).
fn started_from_run_id(run: &str) -> Option<DateTime<Utc>> {
    let stamp = run.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Whether the marks on `raised` (a group the generic `drill-raise`
/// marks) may stand in for drill `run`'s journal, read right now: the
/// group carries that drill's marks; the run id names a drill of a plan
/// of `plans` that has the group; and the group is not in a region where
/// that plan's data is written (read through its data role: a mark there,
/// forged by whoever may tag the group, must not make a sweep lower what
/// serves). A read that fails is a no, and why (`Err`).
async fn marks_vouch(
    (clouds, plans): (&Clouds, &[Plan]),
    raised: &Temp,
    run: &str,
) -> Result<bool, String> {
    let Temp::Raised {
        kind,
        region,
        group,
        ..
    } = raised
    else {
        return Ok(false);
    };
    let Some(scaling) = kind.scaling().filter(|s| s.carries_marks()) else {
        return Ok(false);
    };
    let marked = match scaling.read(clouds, region, group).await {
        Ok(Some(read)) => crate::steps::drill_raise::marked(&read).is_some_and(|(r, _)| r == run),
        Ok(None) => false,
        Err(e) => return Err(e.summary()),
    };
    let owner = plans.iter().find(|p| {
        run.contains(&format!("-{}-", p.name()))
            && crate::plan::kinds::each(&p.spec)
                .iter()
                .any(|r| match r.shown() {
                    Shown::Capacity(g) => {
                        g.raised_group(region) == Some((region.clone(), group.clone()))
                    }
                    _ => false,
                })
    });
    let Some(plan) = owner.filter(|_| marked && started_from_run_id(run).is_some()) else {
        return Ok(false);
    };
    writes_in(clouds, plan, region).await.map(|writes| !writes)
}

/// Whether a data copy of `plan` in `region` is its writer, read through
/// each data kind's role (`Err`: a read failed, and why). A plan without
/// data serves from its home region.
async fn writes_in(clouds: &Clouds, plan: &Plan, region: &str) -> Result<bool, String> {
    let mut any = false;
    for r in crate::plan::kinds::each(&plan.spec) {
        let Shown::Data(copies) = r.shown() else {
            continue;
        };
        any = true;
        match copies.describe(clouds, region).await {
            Ok(Some(c)) if c.role == crate::cloud::DbRole::Primary => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(e.summary()),
        }
    }
    Ok(!any && region == plan.home())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<Plan> {
        crate::plan::reference()
    }

    /// A drill record is one under a plan's record name (or a level of its
    /// failover chain), with a drill's time in its name; nothing else is.
    #[test]
    fn a_drill_records_name_says_its_drill_under_a_plans_name_only() {
        let names = || ["orders.gcp.example.com.", "api.example.com"].into_iter();
        for (name, want) in [
            (
                "drill-20261127t052145z-2e70.orders.gcp.example.com.",
                Some("20261127t052145z-2e70"),
            ),
            (
                "drill-20261127t052145z-2e70.API.example.com.",
                Some("20261127t052145z-2e70"),
            ),
            (
                "drill-20261127t052145z-2e70.drctl-failover-1.api.example.com",
                Some("20261127t052145z-2e70"),
            ),
            ("drill-20261127t052145z-2e70.other.example.com.", None),
            ("drill-not-a-time.orders.gcp.example.com.", None),
            ("orders.gcp.example.com.", None),
            ("drill-20261127t052145z-2e70", None),
        ] {
            assert_eq!(drill_record_of(name, names()), want, "{name}");
        }
    }

    /// A drill's copy is known by its name alone: the short id read back
    /// from it, and the name remade from that short id and the base,
    /// whatever the length of the base (a long one ends in a digest).
    #[test]
    fn a_drill_copys_name_says_its_drill_and_what_it_copies() {
        let run = "20261127T052145Z-orders-gcp-2e70";
        let long = "a".repeat(70);
        for base in ["orders-sql-use4", long.as_str()] {
            let name = temp_database_id(run, base);
            let short = short_id_of_copy(&name).expect("a drill's copy");
            assert_eq!(short, "20261127t052145z-2e70", "{name}");
            assert!(is_copy_of(&name, short, base), "{name}");
            assert!(!is_copy_of(&name, short, "orders-sql"), "{name}");
        }
        for not in [
            "orders-sql",
            "drill-",
            "drill-20261127t052145z",
            "drill-20261127t052145z-",
            "drill-not-a-time-at-all-orders",
            "drill-20261399t999999z-2e70-orders-sql",
        ] {
            assert_eq!(short_id_of_copy(not), None, "{not}");
        }
    }

    /// A huge `max_duration` (a flag's or a plan's) overflowed `max +
    /// SWEEP_GRACE` and then the drill's start plus it: an untagged drill
    /// resource now expires at the end of time, never a panic.
    #[test]
    fn regression_a_huge_max_duration_overflowed_the_expiry() {
        let short = "99991231t235959z-ab12";
        assert_eq!(
            drill_expiry(&[], short, Duration::MAX),
            Some(DateTime::<Utc>::MAX_UTC)
        );
        let started = crate::steps::drill_names::started_from_short_id(short).unwrap();
        let cap = crate::plan::duration::MAX_DURATION;
        assert_eq!(
            drill_expiry(&[], short, cap),
            Some(started + chrono::Duration::from_std(cap + SWEEP_GRACE).unwrap())
        );
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

    /// A sweep removes an Aurora cluster only when its name is the copy a
    /// drill (its run tag) makes of one of the plans' global database
    /// members in that region: never a member itself, another run's name,
    /// or a copy in another region.
    #[test]
    fn sweep_finds_only_the_drill_copies_of_the_plans_global_databases() {
        let all = plans();
        let run = "20261125T040000Z-orders-9d10";
        let ours = temp_cluster_id(run, "orders-use1");
        assert!(copies_a_plan_cluster(&all, "us-east-1", run, &ours));
        assert!(!copies_a_plan_cluster(&all, "us-west-2", run, &ours));
        assert!(!copies_a_plan_cluster(
            &all,
            "us-east-1",
            "20261125T040000Z-orders-aaaa",
            &ours
        ));
        assert!(!copies_a_plan_cluster(
            &all,
            "us-east-1",
            run,
            "orders-use1"
        ));
        let payments: Vec<Plan> = all
            .iter()
            .filter(|p| p.name() == "payments")
            .cloned()
            .collect();
        assert!(!copies_a_plan_cluster(&payments, "us-east-1", run, &ours));
    }
}
