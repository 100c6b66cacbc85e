//! What a drill left behind, found without its journal: the one way every
//! drill step kind answers a sweep (`drctl drill sweep`).
//!
//! Why here: a sweep is the promise that a drill whose journal is lost (a
//! laptop gone mid-drill) still leaves nothing running. Each drill step
//! kind knows the names and tags it gives what it makes; written once per
//! kind beside the code that makes it ([`Drilled::leftovers`]), a new drill
//! kind cannot be missed by the sweep, and a copy's name cannot drift from
//! the name its finder looks for. The sweep itself
//! (`crate::cleanup::sweep`) compiles each plan's drill for every region it
//! could have targeted and asks each step; it holds no per-kind code.
//!
//! [`Look`] lists each listing (an RDS region, a Cloud SQL project, a
//! zone) once for every step that asks, and keeps each listing's failure,
//! said once: a region that does not answer is reported, never taken for
//! "nothing there".

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::drill_names::{RUN_TAG, expiry, started_from_short_id};
use super::placement::same_name;
use crate::cloud::{CloudError, Clouds, DnsRecord, HealthCheck, ObjectUrl};
use crate::journal::Temp;
use crate::plan::kinds::drilling::{Drilling, Listed, Shadow};
use crate::plan::kinds::traffic::Zone;

/// A drill step kind's side a sweep reads: what drills of it left in the
/// cloud, found by the tags and names the step gave them.
#[async_trait]
pub trait Drilled: Send + Sync {
    /// What drills of this step (any run, this plan and target) may have
    /// left, listed through `look`: only what carries a drill's tags or
    /// name *and* is named as this step names what it makes for that
    /// drill (a copy), or as a drill names a copy of one of its plan's
    /// names (a record, a control): another team's `drill-` resource is
    /// not ours to sweep.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left>;
}

/// A resource a drill left.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    /// The resource, as a cleanup removes it.
    pub temp: Temp,
    /// Which drill made it, as it says.
    pub drill: Drill,
}

/// How a leftover says which drill made it.
#[derive(Debug, Clone, PartialEq)]
pub enum Drill {
    /// By its tags or marks: the run, and the expiry the drill wrote.
    Tagged {
        /// The drill's run id.
        run: String,
        /// When it expires, as tagged (`None`: no expiry tag).
        expires: Option<DateTime<Utc>>,
    },
    /// By its name alone: the drill's short id (its start time and
    /// suffix); its expiry is the sweep's to work out.
    Named {
        /// The short id.
        short: String,
    },
}

impl Drill {
    /// The drill `tags` name (their run tag and expiry), if any.
    pub fn of_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        Some(Self::Tagged {
            run: tags.get(RUN_TAG)?.clone(),
            expires: expiry(tags),
        })
    }

    /// The drill whose short id is `short`, when it holds a drill's time.
    pub fn of_short(short: &str) -> Option<Self> {
        started_from_short_id(short)?;
        Some(Self::Named {
            short: short.to_string(),
        })
    }

    /// A run id that names what this drill made as the drill did: its
    /// own when tagged; from a short id, one with the same time and
    /// suffix (the only parts of a run id that go into a drill's names).
    pub fn run(&self) -> String {
        match self {
            Self::Tagged { run, .. } => run.clone(),
            Self::Named { short } => match short.split_once('-') {
                Some((stamp, suffix)) => format!("{stamp}-left-{suffix}"),
                None => short.clone(),
            },
        }
    }
}

/// What among `listed` a drill left: each with the drill its tags or name
/// say (`None`: no drill's), its name, and what it is as a cleanup removes
/// it, kept when `ours(name, run)` (the name is the one a drill of that
/// run gives what it makes; a run from a short id names as that drill did,
/// [`Drill::run`]).
pub fn keep<'a>(
    listed: impl IntoIterator<Item = (Option<Drill>, &'a str, Temp)>,
    ours: impl Fn(&str, &str) -> bool,
) -> Vec<Left> {
    (listed.into_iter())
        .filter_map(|(drill, name, temp)| {
            let drill = drill?;
            ours(name, &drill.run()).then_some(Left { temp, drill })
        })
        .collect()
}

/// The drill records among zone `z`'s record sets `listed` under one of
/// `names` ([`record_under`]), each as its kind's cleanup removes it.
pub fn records_under<'n>(
    listed: &[DnsRecord],
    z: Zone<'_>,
    names: impl Iterator<Item = &'n str> + Clone,
) -> Vec<Left> {
    (listed.iter())
        .filter_map(|r| {
            let drill = Drill::of_short(record_under(&r.name, names.clone())?)?;
            let temp = Temp::Record {
                kind: z.api.kind(),
                project: z.project.to_string(),
                zone: z.name.to_ascii_lowercase(),
                name: r.name.clone(),
                rtype: r.rtype.clone(),
            };
            Some(Left { temp, drill })
        })
        .collect()
}

/// The short id in a drill copy's name (`drill-<short id>-<base>`, as
/// `drill_names::temp_database_id` makes it), when the name has that form:
/// the name alone, not yet that it is one a step would make.
pub fn copy_short(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("drill-")?;
    // `20261127t052145z-2e70`: the run's time, then its suffix.
    let stamp = rest.get(..16)?;
    let tail = rest.get(16..)?.strip_prefix('-')?;
    let suffix = tail.split('-').next().filter(|s| !s.is_empty())?;
    started_from_short_id(stamp)?;
    rest.get(..16 + 1 + suffix.len())
}

/// The short id in a drill record's name (`drill-<short id>.<rest>`, as
/// `drill_names::record_name` makes it), when the name has that form.
pub fn record_short(name: &str) -> Option<&str> {
    let (short, _) = name
        .strip_prefix(super::drill_names::RECORD_PREFIX)?
        .split_once('.')?;
    started_from_short_id(short).map(|_| short)
}

/// The short id of the drill whose record `name` is, when it is one under
/// one of `names` (`drill-<short id>.<name>`, a level of a failover chain,
/// `drill-<short id>.drctl-failover-K.<name>`, included), with a drill's
/// time in it. Any of a plan's names in the zone, whatever its switch and
/// its chain now: a drill of an earlier version of the plan (another
/// switch mode, a region since dropped) named its records so too.
pub fn record_under<'a, 'n>(
    name: &'a str,
    mut names: impl Iterator<Item = &'n str>,
) -> Option<&'a str> {
    let short = record_short(name)?;
    let under = &name[super::drill_names::RECORD_PREFIX.len() + short.len() + 1..];
    let under = match under.split_once('.') {
        Some((label, rest)) if label.starts_with("drctl-failover-") => rest,
        _ => under,
    };
    names.any(|n| same_name(n, under)).then_some(short)
}

/// A listing, read once per key for every step that asks.
type Memo<T> = Mutex<BTreeMap<String, Arc<T>>>;

/// The listings a sweep reads, each once, and the failures it met.
pub struct Look<'c> {
    clouds: &'c Clouds,
    errors: Mutex<Vec<CloudError>>,
    copies: Memo<Vec<Listed>>,
    zones: Memo<Vec<DnsRecord>>,
    checks: Memo<Vec<HealthCheck>>,
    objects: Memo<Vec<String>>,
}

/// `m`, locked (a poisoned lock's data is still whole: every write to it
/// is one insert or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<'c> Look<'c> {
    /// A look at `clouds`, nothing listed yet.
    pub fn new(clouds: &'c Clouds) -> Self {
        Self {
            clouds,
            errors: Mutex::default(),
            copies: Memo::default(),
            zones: Memo::default(),
            checks: Memo::default(),
            objects: Memo::default(),
        }
    }

    /// The clouds, for a read of a step's own (a group's marks).
    pub fn clouds(&self) -> &'c Clouds {
        self.clouds
    }

    /// Keeps `e`: a read that failed, reported by the sweep.
    pub fn failed(&self, e: CloudError) {
        lock(&self.errors).push(e);
    }

    /// The failures met, in order.
    pub fn into_errors(self) -> Vec<CloudError> {
        self.errors.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// `memo`'s listing under `key`, listed by `list` the first time (a
    /// failure kept, and an empty listing in its place, so it is said once).
    async fn once<T, F, Fut>(&self, memo: &Memo<T>, key: String, list: F) -> Arc<T>
    where
        T: Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, CloudError>>,
    {
        if let Some(v) = lock(memo).get(&key) {
            return v.clone();
        }
        let v = Arc::new(match list().await {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                self.failed(e);
                T::default()
            }
        });
        lock(memo).insert(key, v.clone());
        v
    }

    /// The drill copies' listing that `role` reads for the resource `s`
    /// (an RDS region, a Cloud SQL project). A place the provider could
    /// not list may hold a drill's copy: it is kept as a failure, never
    /// taken for "none there".
    pub async fn copies(&self, role: &dyn Drilling, s: &Shadow<'_>) -> Arc<Vec<Listed>> {
        let list = || async {
            let listing = role.list(self.clouds, s).await?;
            for e in listing.unreachable {
                self.failed(e);
            }
            Ok(Some(listing.copies))
        };
        self.once(&self.copies, role.listing(s), list).await
    }

    /// Every record set of zone `z` (none when there is no such zone: no
    /// drill record in it either), through its kind's zone changes.
    pub async fn zone_sets(&self, z: Zone<'_>) -> Arc<Vec<DnsRecord>> {
        let list = || z.api.list(self.clouds, z);
        let key = format!("{} {}", z.api.provider(), z.subject().to_ascii_lowercase());
        self.once(&self.zones, key, list).await
    }

    /// Every Route 53 health check.
    pub async fn health_checks(&self) -> Arc<Vec<HealthCheck>> {
        let list = || async { self.clouds.dns.list_health_checks().await.map(Some) };
        self.once(&self.checks, String::new(), list).await
    }

    /// The keys of the objects under `prefix`, read through `region`'s
    /// endpoint.
    pub async fn object_keys(&self, region: &str, prefix: &ObjectUrl) -> Arc<Vec<String>> {
        let list = || async {
            let listing = self.clouds.objects.list(region, prefix, false).await?;
            Ok(Some(listing.keys))
        };
        self.once(&self.objects, format!("{region} {prefix}"), list)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run id remade from a short id names a copy and a record exactly
    /// as the drill whose short id it is did.
    #[test]
    fn a_run_made_from_a_short_id_names_as_the_drill_did() {
        let run = "20261122T192005Z-orders-ab12";
        let short = super::super::drill_names::short_id(run);
        let named = Drill::of_short(&short).unwrap().run();
        for base in [
            "orders-db",
            "a-very-long-base-name-that-is-cut-and-digested-0123456789",
        ] {
            assert_eq!(
                super::super::drill_names::temp_database_id(&named, base),
                super::super::drill_names::temp_database_id(run, base)
            );
        }
        assert_eq!(
            super::super::drill_names::record_name(&named, "api.example.com"),
            super::super::drill_names::record_name(run, "api.example.com")
        );
        assert_eq!(Drill::of_short("notadrill-ab12"), None);
    }

    /// Every step a drill compiles that makes something answers a sweep
    /// (its kind marked `+ drilled`): a drill kind added without it would
    /// leave what its lost drills made for ever.
    #[test]
    fn every_drill_step_that_makes_something_is_found_by_a_sweep() {
        use crate::steps::graph::{DrillDepth, RunMode, compile_mode};
        let mode = RunMode::Drill {
            depth: DrillDepth::Shadow,
        };
        let mut drilled = std::collections::BTreeSet::new();
        for p in crate::plan::reference_with_gcp() {
            for r in p.regions() {
                for s in compile_mode(&p, r, &mode).unwrap().steps {
                    let makes = !s
                        .kind
                        .action()
                        .creates("20261122T192005Z-x-ab12")
                        .is_empty()
                        || s.kind.name().as_str().starts_with("drill-");
                    assert_eq!(s.kind.drilled().is_some(), makes, "{}", s.id);
                    if makes {
                        drilled.insert(s.kind.name().as_str());
                    }
                }
            }
        }
        assert_eq!(drilled.len(), 4, "every drill kind compiled: {drilled:?}");
    }

    /// A copy's and a record's names say their drill's short id, only when
    /// it holds a drill's time; DNS names compare without case or the
    /// final dot.
    #[test]
    fn a_drill_copys_name_says_its_short_id() {
        assert_eq!(
            copy_short("drill-20261127t052145z-2e70-orders-db"),
            Some("20261127t052145z-2e70")
        );
        for not in [
            "orders-db",
            "drill-notatime-2e70-orders-db",
            "drill-20261127t052145z",
            "drill-20261127t052145z--x",
        ] {
            assert_eq!(copy_short(not), None, "{not}");
        }
        assert_eq!(
            record_short("drill-20261127t052145z-2e70.api.example.com."),
            Some("20261127t052145z-2e70")
        );
        assert_eq!(record_short("drill-nope.api.example.com."), None);
        assert!(same_name("API.example.com.", "api.example.com"));
    }

    /// A drill record is one under a plan's record name (or a level of its
    /// failover chain), with a drill's time in its name; nothing else is.
    #[test]
    fn a_drill_records_name_says_its_drill_under_a_plans_name_only() {
        let names = || ["orders.gcp.example.com.", "api.example.com"].into_iter();
        let short = Some("20261127t052145z-2e70");
        for (name, want) in [
            ("drill-20261127t052145z-2e70.orders.gcp.example.com.", short),
            ("drill-20261127t052145z-2e70.API.example.com.", short),
            (
                "drill-20261127t052145z-2e70.drctl-failover-1.api.example.com",
                short,
            ),
            ("drill-20261127t052145z-2e70.other.example.com.", None),
            ("drill-not-a-time.orders.gcp.example.com.", None),
            ("orders.gcp.example.com.", None),
            ("drill-20261127t052145z-2e70", None),
        ] {
            assert_eq!(record_under(name, names()), want, "{name}");
        }
    }
}
