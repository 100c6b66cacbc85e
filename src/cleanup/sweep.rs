//! `drctl drill sweep`: finds what drills left behind without their
//! journals (a laptop lost mid-drill, a journal deleted) by the tags and
//! names every drill resource carries, and removes what has expired.
//! Which tags and names are a drill's is each drill step kind's to say
//! (`steps::leftovers`, `Drilled`): the sweep compiles each plan's drill
//! for every region it could have targeted and asks each step, so it holds
//! no code of its own per kind, and a drill kind marked `+ drilled` is
//! swept as soon as it is written. A group raised by the generic
//! `drill-raise` (an Auto Scaling group's or an EKS node group's bounds,
//! an ECS service's count, a Cloud Run service's floor) carries the drill's marks (tags, labels), the size to
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
use crate::cloud::{CloudError, Clouds};
use crate::journal::{Cleaned, JournalStore, Temp};
use crate::plan::Plan;
use crate::plan::kinds::Shown;
use crate::steps::capacity;
use crate::steps::drill_names::{SWEEP_GRACE, plan_max_duration, short_id, started_from_short_id};
use crate::steps::graph::{DrillDepth, RunMode, Step, compile_mode};
use crate::steps::leftovers::{Drill, Look};

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

/// Finds every drill resource of `plans` in every region of each plan,
/// as each drill step kind finds its own ([`Drilled::leftovers`]: by
/// their tags, names and marks) for every region a drill of the plan
/// could have targeted; and raised groups of every capacity kind by the
/// journals in `journals` of the drills that raised them. Regions that do
/// not answer are reported, not fatal; so are journals that cannot be
/// read.
///
/// [`Drilled::leftovers`]: crate::steps::leftovers::Drilled::leftovers
pub async fn find(
    clouds: &Clouds,
    plans: &[Plan],
    journals: &dyn JournalStore,
    now: DateTime<Utc>,
) -> (Vec<Found>, Vec<CloudError>) {
    let mut f = Finds {
        clouds,
        journals,
        now,
        found: Vec::new(),
        errors: Vec::new(),
        budgets: BTreeMap::new(),
        budgets_unread: false,
    };
    let look = Look::new(clouds);
    let mut named = Vec::new();
    for (p, step) in drill_steps(plans, &mut f.errors) {
        let Some(drilled) = step.kind.drilled() else {
            continue;
        };
        for left in drilled.leftovers(&look).await {
            match left.drill {
                Drill::Tagged { run, expires } => f.add(left.temp, Some(run), expires),
                Drill::Named { short } => named.push((p, left.temp, short)),
            }
        }
    }
    f.errors.extend(look.into_errors());
    // A resource found by its name alone expires with its drill's tagged
    // resources, found above; not with a raise found by a journal below
    // (a journal, which a writer of the state may forge, never makes one
    // expire before its plan's budget: `Finds::untagged_expiry`).
    for (p, temp, short) in named {
        let expires = f.untagged_expiry(&short, plan_max_duration(p)).await;
        f.add(temp, None, expires);
    }
    f.raised_groups(plans, journals).await;
    (f.found, f.errors)
}

/// Every step of every drill `plans` could have run: each plan's shadow
/// drill compiled for every region it may target (its home too: after a
/// failover, a drill rehearses the way back). A plan that does not
/// compile is said, not skipped in silence.
fn drill_steps<'p>(plans: &'p [Plan], errors: &mut Vec<CloudError>) -> Vec<(&'p Plan, Step)> {
    let mode = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    let mut out = Vec::new();
    for p in plans {
        for target in p.regions() {
            match compile_mode(p, target, &mode) {
                Ok(g) => out.extend(g.steps.into_iter().map(|s| (p, s))),
                Err(e) => errors.push(CloudError::new(
                    "drctl",
                    "compile",
                    p.name(),
                    target,
                    crate::cloud::ErrorKind::Client,
                    format!("the plan's drill does not compile, so its leftovers were not looked for: {e}"),
                )),
            }
        }
    }
    out
}

/// What a sweep has found so far, and the regions that did not answer.
struct Finds<'c> {
    clouds: &'c Clouds,
    /// The state's journals: a drill's own budget when it is there.
    journals: &'c dyn JournalStore,
    now: DateTime<Utc>,
    found: Vec<Found>,
    errors: Vec<CloudError>,
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

    /// Adds `t` once, whichever step or journal found it: drill `run`'s
    /// when its tags, marks or journal say (`None`: found by its name),
    /// expiring at `expires`.
    fn add(&mut self, t: Temp, run: Option<String>, expires: Option<DateTime<Utc>>) {
        if !self.found.iter().any(|f| f.resource == t) {
            self.found.push(Found {
                resource: t,
                run,
                expires,
                expired: self.expired(expires),
            });
        }
    }

    /// Standby groups of every capacity kind that a drill raised and no
    /// cleanup returned, by the journals of the drills that raised them
    /// (every kind's but a managed instance group's says so in its marks
    /// too, found by `drill-raise`'s leftovers). Those are read only for a
    /// standby group that does not read at its plan's standby size (`steps::capacity`): nothing else can be
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
            self.add(l.temp, Some(l.run), Some(expires));
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
    let Some(scaling) = kind.scaling().filter(|s| s.about().carries_marks) else {
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

    /// A copy in the fake world under `id` in `region`, of `of` (an
    /// instance, or with `cluster` an Aurora cluster), tagged by drill `run`.
    fn copy(
        f: &crate::cloud::fake::FakeCloud,
        (region, of, id): (&str, &str, &str),
        run: &str,
        cluster: bool,
    ) {
        let tags = crate::steps::drill_names::tags(run, "someone", Utc::now());
        let key = (region.to_string(), of.to_string());
        let mut s = f.state();
        if cluster {
            let mut c = s.clusters[&key].clone();
            (c.id, c.tags, c.global_cluster) = (id.into(), tags, None);
            s.clusters.insert((region.into(), id.into()), c);
        } else {
            let mut i = s.databases[&key].clone();
            (i.id, i.tags) = (id.into(), tags);
            s.databases.insert((region.into(), id.into()), i);
        }
    }

    /// What `find` found that `plans` own, by id: tagged copies only.
    async fn copies_found(f: &crate::cloud::fake::FakeCloud, plans: &[Plan]) -> Vec<String> {
        let store = crate::journal::MemoryStore::new();
        let (found, errors) = find(&f.clouds(), plans, &store, Utc::now()).await;
        assert!(errors.is_empty(), "{errors:?}");
        (found.iter())
            .filter_map(|x| {
                let (_, region, address) = x.resource.copy()?;
                Some(format!("{region}/{address}"))
            })
            .collect()
    }

    /// Regression: `drill sweep --plan payments --all` deleted the temporary
    /// database of a drill of another plan (another fixture's, in the
    /// tests) running in the same region. A tagged copy is a plan's only
    /// under the name a drill of that run gives its copy of the plan's
    /// replica in that region: not another run's name, another plan's
    /// replica's, or the same name in another region.
    #[tokio::test]
    async fn sweep_of_one_plan_leaves_another_plans_temporary_database() {
        let all = plans();
        let payments: Vec<Plan> = (all.iter())
            .filter(|p| p.name() == "payments")
            .cloned()
            .collect();
        let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
        let run = "20261123T004536Z-payments-9d10";
        let name = |base| crate::steps::drill_names::temp_database_id(run, base);
        let ours = name("payments-db-use1");
        copy(&f, ("us-east-1", "payments-db-use1", &ours), run, false);
        let other_run = "20261123T004536Z-payments-aaaa";
        copy(
            &f,
            (
                "us-east-1",
                "payments-db-use1",
                &ours.replace("9d10", "bbbb"),
            ),
            other_run,
            false,
        );
        copy(
            &f,
            ("us-east-1", "ledger-db-use1", &name("ledger-db-use1")),
            run,
            false,
        );
        copy(&f, ("us-west-2", "payments-db", &ours), run, false);
        assert_eq!(
            copies_found(&f, &payments).await,
            [format!("us-east-1/{ours}")]
        );
        let found = copies_found(&f, &all).await;
        assert!(
            found.contains(&format!("us-east-1/{}", name("ledger-db-use1"))),
            "{found:?}"
        );
        assert_eq!(found.len(), 2, "{found:?}");
    }

    /// A sweep removes an Aurora cluster only when its name is the copy a
    /// drill (its run tag) makes of one of the plans' global database
    /// members in that region: never a member itself, another run's name,
    /// or a copy in another region.
    #[tokio::test]
    async fn sweep_finds_only_the_drill_copies_of_the_plans_global_databases() {
        let all = plans();
        let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
        let run = "20261125T040000Z-orders-9d10";
        let ours = crate::steps::drill_names::temp_cluster_id(run, "orders-use1");
        copy(&f, ("us-east-1", "orders-use1", &ours), run, true);
        copy(
            &f,
            ("us-east-1", "orders-use1", &ours.replace("9d10", "aaaa")),
            run,
            true,
        );
        copy(&f, ("us-west-2", "orders-usw2", &ours), run, true);
        assert_eq!(copies_found(&f, &all).await, [format!("us-east-1/{ours}")]);
        let payments: Vec<Plan> = (all.iter())
            .filter(|p| p.name() == "payments")
            .cloned()
            .collect();
        assert_eq!(copies_found(&f, &payments).await, Vec::<String>::new());
    }

    /// A drill record a drill of an earlier version of the plan made (its
    /// record then switched by health check, with a failover chain the
    /// plan has since lost a level of) is still found under the plan's
    /// record name, with the drill's short id; one under a name the plan
    /// does not have is not.
    #[tokio::test]
    async fn a_drill_record_of_an_earlier_plan_is_found_under_its_name() {
        let payments: Vec<Plan> = (plans().into_iter())
            .filter(|p| p.name() == "payments")
            .collect();
        let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
        let short = "20261120t010203z-ab12";
        let names = [
            format!("drill-{short}.drctl-failover-3.api.example.com."),
            format!("drill-{short}.someone-else.example.com."),
        ];
        {
            let mut s = f.state();
            let zone = (s.zones.values())
                .find(|z| z.name == "example.com.")
                .expect("the reference zone")
                .id
                .clone();
            let mut r = s.records[&zone][0].clone();
            for name in &names {
                r.name = name.clone();
                s.records.get_mut(&zone).unwrap().push(r.clone());
            }
        }
        let store = crate::journal::MemoryStore::new();
        let (found, errors) = find(&f.clouds(), &payments, &store, Utc::now()).await;
        assert!(errors.is_empty(), "{errors:?}");
        let records: Vec<(&str, bool)> = (found.iter())
            .filter_map(|x| match &x.resource {
                Temp::Record { name, .. } => Some((name.as_str(), x.expired)),
                _ => None,
            })
            .collect();
        assert_eq!(records, [(names[0].as_str(), true)], "{found:?}");
    }
}
