//! Where a plan serves: read from the cloud, with the journals as a
//! cross-check (docs/watch.md, "Which region is active").
//!
//! # Why
//!
//! The run journals are objects in the state bucket. Anyone who can write
//! there can add a "succeeded failover to R" journal; a watch that took the
//! active region from the journals alone would then judge R (an idle
//! standby, its checks failing) down and fail the plan over to a third
//! region while its primary is healthy: two primaries. What a failover
//! changes in the cloud a bucket writer cannot change: which copy of the
//! database is the primary, which data-plane control serves, where the
//! records point. So each round reads those ([`read`]: bounded, beside the
//! observation), [`place`] names the one region they agree on, and
//! [`judge`] holds it against the journals. Watch acts for a plan only when
//! both name the same region; otherwise it does nothing for the plan and
//! says why, naming the journals the cloud contradicts. Both judgements are
//! pure, tested on plain data.
//!
//! An unanswered read (the failed region's API, most likely) is unknown,
//! never evidence either way. Every traffic kind's records and controls
//! are read through its role (`plan::kinds::traffic`): data-plane records
//! resolved and Cloud DNS records (Google's global API) every round;
//! Route 53's API is asked (one `ListResourceRecordSets` per record, after
//! the zone's lookup) only when the other reads do not already name the
//! journals' region: the API allows five requests a second per account,
//! and a failover's switch needs them more than a healthy round does.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use super::decide::{Tally, Verdict};
use crate::cloud::{Clouds, DbRole};
use crate::journal::watch::WatchDecision;
use crate::plan::Plan;
use crate::plan::kinds::traffic::Points;
use crate::plan::kinds::{Shown, each};
use crate::runs::watch::{PlanHistory, Switch};
use crate::steps::placement;
pub use crate::steps::placement::{ControlReading, ControlSaid};

/// What one database copy said of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbSaid {
    /// It is the primary (writable).
    Primary,
    /// It is a read replica.
    Replica,
    /// It does not exist.
    Missing,
    /// Its read did not answer, or not usefully: why.
    Unknown(String),
}

/// One database copy of the plan, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbReading {
    /// The plan's data resource (a database, a global database, a Cloud
    /// SQL instance).
    pub id: String,
    /// The region of this copy.
    pub region: String,
    /// What it said.
    pub said: DbSaid,
    /// Its endpoint, when it answered with one (what a record that
    /// `follows` the database names).
    #[serde(skip)]
    pub endpoint: Option<String>,
    /// Whether that endpoint follows the primary (a Cloud SQL write
    /// endpoint: `CopyState::moves_with_primary`).
    #[serde(skip)]
    pub endpoint_moves: bool,
    /// The copy's other names, its own alone (`CopyState::own_names`).
    #[serde(skip)]
    pub own_names: Vec<String>,
}

/// What one record said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSaid {
    /// It points at this region (its target, or its copy's endpoint).
    Points(String),
    /// Its values name no region of the plan (or a copy whose endpoint
    /// was not read).
    Unrecognised(Vec<String>),
    /// It, or its zone, does not exist.
    Missing,
    /// Its read did not answer, or not usefully: why.
    Unknown(String),
}

/// One record of the plan, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordReading {
    /// The record's resource (`[[dns]]`, `[[cloud_dns]]`).
    pub record: String,
    /// What it said.
    pub said: RecordSaid,
}

/// What the cloud said of one plan's placement, in one round.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct World {
    /// Each database copy, database-major, in plan order.
    pub databases: Vec<DbReading>,
    /// Each data-plane control.
    pub controls: Vec<ControlReading>,
    /// Each record read (data-plane records and Cloud DNS records always;
    /// records read through Route 53's API only when the other reads did
    /// not settle it, see `route53`).
    pub records: Vec<RecordReading>,
    /// Whether the plan's Route 53 records were read.
    pub route53: bool,
}

/// The region the cloud names, or why it names none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Placement {
    /// One region, and what shows it.
    Region {
        /// The region.
        region: String,
        /// What shows it, in a line.
        basis: String,
    },
    /// The cloud contradicts itself (two primaries with nothing to choose
    /// between them, records or controls split, traffic sent to a replica).
    Ambiguous {
        /// How.
        why: String,
    },
    /// Nothing that answered tells.
    Unknown {
        /// What did not answer.
        why: String,
    },
    /// The plan has nothing a failover changes that could be read (no
    /// database, no record).
    Nothing,
}

/// The region a plan serves from, judged, or why watch will not act.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Judged {
    /// The cloud and the journals name the same region.
    Agreed {
        /// The region.
        region: String,
        /// What in the cloud shows it.
        basis: String,
    },
    /// The plan has nothing the cloud could be asked about: the journals
    /// alone say where it serves.
    JournalsOnly {
        /// The region, by the journals.
        region: String,
    },
    /// A run is moving the plan (its journal is open, or it holds the
    /// plan's lock) and the cloud does not show the journals' region: it
    /// is between regions. Watch waits for the run to end.
    Moving {
        /// The run.
        run: String,
        /// What the cloud shows meanwhile.
        world: String,
    },
    /// Watch does nothing for the plan.
    Refused {
        /// Why, in a sentence.
        why: String,
        /// The journals whose claims the cloud contradicts (run ids).
        distrusted: Vec<String>,
    },
}

impl Judged {
    /// Whether watch may act for the plan (the cloud and the journals
    /// agree, or the plan has nothing to read).
    pub fn acts(&self) -> bool {
        matches!(self, Self::Agreed { .. } | Self::JournalsOnly { .. })
    }

    /// Whether watch refuses to act for the plan.
    pub fn refuses(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The journals distrusted (none unless refused).
    pub fn distrusted(&self) -> &[String] {
        match self {
            Self::Refused { distrusted, .. } => distrusted,
            _ => &[],
        }
    }

    /// The judgement in a line, for people.
    pub fn line(&self) -> String {
        match self {
            Self::Agreed { region, basis } => {
                format!("{region}, the cloud agrees with the journals ({basis})")
            }
            Self::JournalsOnly { region } => format!(
                "{region} by the journals alone (the plan has no database or record to read)"
            ),
            Self::Moving { run, world } => {
                format!("between regions: run {run} is moving the plan ({world})")
            }
            Self::Refused { why, .. } => format!("refused: {why}"),
        }
    }
}

/// Where the plan's regional signals put one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copies {
    /// A copy there is the primary.
    Primary,
    /// Every copy there answered, none a primary (replicas, or missing).
    NotHere,
    /// Some copy there did not answer, and none answered as the primary.
    Unknown,
    /// The plan has no database there.
    None,
}

fn copies(w: &World, region: &str) -> Copies {
    let here: Vec<&DbSaid> = (w.databases.iter())
        .filter(|d| d.region == region)
        .map(|d| &d.said)
        .collect();
    if here.is_empty() {
        Copies::None
    } else if here.contains(&&DbSaid::Primary) {
        Copies::Primary
    } else if here.iter().any(|s| matches!(s, DbSaid::Unknown(_))) {
        Copies::Unknown
    } else {
        Copies::NotHere
    }
}

/// The region the cloud names for a plan of `regions` (home first), from
/// what was read (pure). A region is **ruled out** by an answer: its
/// database copies answered and none is the primary (replicas, or
/// missing), or its data-plane control drains. The rules, in order:
///
/// 1. **Traffic**: the regions the records point at and the data-plane
///    controls that serve (a data-plane record resolving to a region whose
///    control drains is the fail-closed answer of a name with no healthy
///    region, not a choice, and does not count). Two such regions:
///    ambiguous (records split).
/// 2. Traffic names one region R: R, unless R is ruled out (traffic sent
///    to a copy that cannot write: ambiguous). A primary elsewhere beside
///    it is an old primary not yet reprotected; R's database may not answer
///    (R is the region that failed).
/// 3. No traffic signal: the one region not ruled out whose database is
///    the primary; two such: ambiguous.
/// 4. No such primary: **by elimination**, the one region not ruled out:
///    typically home when it does not answer and every standby answered
///    as a replica. Otherwise unknown.
///
/// An unanswered read rules nothing in or out.
pub fn place(regions: &[String], w: &World) -> Placement {
    if w.databases.is_empty() && w.controls.is_empty() && w.records.is_empty() {
        return Placement::Nothing;
    }
    let traffic = traffic(w);
    let primaries: Vec<&String> = (regions.iter())
        .filter(|r| copies(w, r) == Copies::Primary && !drains(w, None, r))
        .collect();
    if traffic.len() > 1 {
        let split = (traffic.iter())
            .map(|(r, what)| format!("{} → {r}", what.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        return Placement::Ambiguous {
            why: format!("traffic is split: {split}"),
        };
    }
    if let Some((region, what)) = traffic.iter().next() {
        return by_traffic(w, region, what, primaries);
    }
    match primaries.as_slice() {
        [one] => {
            return Placement::Region {
                region: one.to_string(),
                basis: "its database is the primary (no record or control names a region)".into(),
            };
        }
        [_, _, ..] => {
            return Placement::Ambiguous {
                why: format!(
                    "the database is primary in {}, and no record or control says which serves",
                    join(&primaries)
                ),
            };
        }
        [] => {}
    }
    if !answered(w) {
        return Placement::Unknown {
            why: format!("nothing answered ({})", unanswered(w)),
        };
    }
    by_elimination(regions, w)
}

/// Whether a data-plane control in `region` drains (`record`: that
/// record's control only; `None`: any of the region's controls).
fn drains(w: &World, record: Option<&str>, region: &str) -> bool {
    (w.controls.iter()).any(|c| {
        c.region == region && c.said == ControlSaid::Drain && record.is_none_or(|r| c.record == r)
    })
}

/// Whether an answer rules `region` out: its copies answered and none is
/// the primary, or its control drains.
fn ruled_out(w: &World, region: &str) -> bool {
    copies(w, region) == Copies::NotHere || drains(w, None, region)
}

/// What sends traffic where: each region the records point at (unless
/// its control drains that record) and each region whose control serves,
/// with what shows it.
fn traffic(w: &World) -> BTreeMap<&str, Vec<String>> {
    let mut traffic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &w.records {
        if let RecordSaid::Points(region) = &r.said
            && !drains(w, Some(&r.record), region)
        {
            (traffic.entry(region.as_str()).or_default()).push(format!("record {}", r.record));
        }
    }
    for c in w.controls.iter().filter(|c| c.said == ControlSaid::Serve) {
        (traffic.entry(c.region.as_str()).or_default())
            .push(format!("control of {} serves", c.record));
    }
    traffic
}

/// Rule 2: traffic names one `region` (shown by `what`): that region,
/// unless it is ruled out; a primary elsewhere is named as an old one.
fn by_traffic(w: &World, region: &str, what: &[String], primaries: Vec<&String>) -> Placement {
    let region = region.to_string();
    if ruled_out(w, &region) {
        return Placement::Ambiguous {
            why: format!(
                "{} → {region}, whose database is not the primary or whose control drains",
                what.join(", ")
            ),
        };
    }
    let mut basis = what.join(", ");
    match copies(w, &region) {
        Copies::Primary => basis = format!("its database is the primary; {basis}"),
        Copies::Unknown => basis.push_str("; its database did not answer"),
        Copies::NotHere | Copies::None => {}
    }
    let old: Vec<&String> = primaries.into_iter().filter(|p| **p != region).collect();
    if !old.is_empty() {
        basis.push_str(&format!(
            "; {} still holds a primary (an old one, not yet reprotected)",
            join(&old)
        ));
    }
    Placement::Region { region, basis }
}

/// Whether any database, control or record read answered.
fn answered(w: &World) -> bool {
    w.databases
        .iter()
        .any(|d| !matches!(d.said, DbSaid::Unknown(_)))
        || w.controls
            .iter()
            .any(|c| !matches!(c.said, ControlSaid::Unknown(_)))
        || w.records
            .iter()
            .any(|r| !matches!(r.said, RecordSaid::Unknown(_)))
}

/// The first three database and record reads that did not answer, and
/// why, in a line.
fn unanswered(w: &World) -> String {
    let mut why: Vec<String> = (w.databases.iter())
        .filter_map(|d| match &d.said {
            DbSaid::Unknown(e) => Some(format!("{} in {}: {e}", d.id, d.region)),
            _ => None,
        })
        .collect();
    why.extend(w.records.iter().filter_map(|r| match &r.said {
        RecordSaid::Unknown(e) => Some(format!("record {}: {e}", r.record)),
        _ => None,
    }));
    why.truncate(3);
    why.join("; ")
}

/// Rule 4: the one region of `regions` not ruled out, or unknown.
fn by_elimination(regions: &[String], w: &World) -> Placement {
    let left: Vec<&String> = regions.iter().filter(|r| !ruled_out(w, r)).collect();
    match left.as_slice() {
        [one] => Placement::Region {
            region: one.to_string(),
            basis: format!(
                "by elimination: {one} did not answer, and every other region answered as not serving"
            ),
        },
        [] => Placement::Unknown {
            why: "every region answered as not serving".into(),
        },
        many => Placement::Unknown {
            why: format!(
                "no primary answered and no record points anywhere; it may be any of {} ({})",
                join(many),
                unanswered(w)
            ),
        },
    }
}

fn join(regions: &[&String]) -> String {
    (regions.iter().map(|r| r.as_str()))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Holds the cloud's placement against the journals (pure). `switches`:
/// every run's switches (the plan's are picked out); `moving`: a run that
/// holds the plan (its journal open, or the plan's lock).
///
/// The cloud and the journals agree: that region. The plan has nothing to
/// read: the journals. Otherwise, while a run moves the plan, the cloud is
/// between regions: watch waits. Otherwise watch refuses: the cloud names
/// another region (the journals that claim the moves the cloud does not
/// show are named: the plan's succeeded failovers and failbacks since the
/// last one to the cloud's region), or it is ambiguous, or nothing
/// answered that tells (the journals alone are not trusted).
pub fn judge(
    plan: &str,
    placement: &Placement,
    hist: &PlanHistory,
    switches: &[(Vec<String>, Switch)],
    moving: Option<&str>,
) -> Judged {
    let journals = hist.active.as_str();
    match placement {
        Placement::Region { region, basis } if region == journals => {
            return Judged::Agreed {
                region: region.clone(),
                basis: basis.clone(),
            };
        }
        Placement::Nothing => {
            return Judged::JournalsOnly {
                region: journals.to_string(),
            };
        }
        _ => {}
    }
    let world = match placement {
        Placement::Region { region, basis } => format!("the cloud shows {region} ({basis})"),
        Placement::Ambiguous { why } => format!("the cloud is ambiguous: {why}"),
        Placement::Unknown { why } => format!("the cloud does not tell: {why}"),
        Placement::Nothing => String::new(),
    };
    if let Some(run) = moving {
        return Judged::Moving {
            run: run.to_string(),
            world,
        };
    }
    match placement {
        Placement::Region { region, basis } => {
            let distrusted = claims_since(plan, region, switches);
            let source = match &hist.last {
                Some(s) => format!("run {}, a {} to {}", s.run_id, s.kind, s.target),
                None => "no run moved it from home".to_string(),
            };
            let whom = if distrusted.is_empty() {
                format!(
                    "no journal records the move to {region} (one is missing, or the plan was moved by hand)"
                )
            } else {
                format!("watch distrusts journal(s) {}", distrusted.join(", "))
            };
            Judged::Refused {
                why: format!(
                    "the journals say {plan} serves from {journals} ({source}), the cloud says {region} ({basis}): {whom}; watch does nothing for {plan}"
                ),
                distrusted,
            }
        }
        Placement::Ambiguous { why } => Judged::Refused {
            why: format!(
                "the cloud does not say where {plan} serves ({why}): watch does nothing for {plan}; a person decides"
            ),
            distrusted: Vec::new(),
        },
        _ => Judged::Refused {
            why: format!(
                "{world}: watch does not act for {plan} on the journals alone (they say {journals})"
            ),
            distrusted: Vec::new(),
        },
    }
}

/// The plan's succeeded failovers and failbacks the cloud contradicts:
/// those after the last one that moved it to `region` (all of them when
/// none did).
fn claims_since(plan: &str, region: &str, switches: &[(Vec<String>, Switch)]) -> Vec<String> {
    let moved: Vec<&Switch> = (switches.iter())
        .filter(|(plans, s)| plans.iter().any(|p| p == plan) && s.outcome.succeeded())
        .map(|(_, s)| s)
        .collect();
    // None went there: every move since home is contradicted.
    let from = moved
        .iter()
        .rposition(|s| s.target == region)
        .map_or(0, |i| i + 1);
    moved[from..].iter().map(|s| s.run_id.clone()).collect()
}

/// The decision that stands in for watch's usual one when it will not act
/// for the plan (`tally`: the votes on the journals' region, shown as they
/// are): refused, it is `blind` to where the plan serves; moving, `busy`.
/// `None`: decide as usual.
pub fn verdict(judged: &Judged, journals: &str, tally: Tally) -> Option<Verdict> {
    let (decision, why) = match judged {
        Judged::Agreed { .. } | Judged::JournalsOnly { .. } => return None,
        Judged::Moving { run, world } => (
            WatchDecision::Busy,
            format!("run {run} is moving the plan ({world}); watch waits for it to end"),
        ),
        Judged::Refused { why, .. } => (WatchDecision::Blind, format!("refused: {why}")),
    };
    Some(Verdict {
        region: Some(journals.to_string()),
        ..Verdict::new(decision, why, tally)
    })
}

/// The copies of every data resource of the plan (RDS databases, Aurora
/// global databases, Cloud SQL: whatever answers the data role,
/// [`Shown::Data`]), each read once under `timeout` through the role.
async fn databases(clouds: &Clouds, plan: &Plan, timeout: Duration) -> Vec<DbReading> {
    let data = each(&plan.spec)
        .into_iter()
        .filter_map(|r| match r.shown() {
            Shown::Data(copies) => Some(copies),
            _ => None,
        });
    let reads = data.flat_map(|c| {
        (plan.regions().iter()).filter_map(move |r| Some((c, r.clone(), c.copy(r)?.to_string())))
    });
    join_all(reads.map(|(c, region, copy)| async move {
        let (service, operation) = crate::plan::kinds::call_parts(c.about().read_call);
        let what = (service, operation, copy.as_str(), region.as_str());
        let read = placement::bounded(timeout, what, c.describe(clouds, &region)).await;
        let (said, copy) = match read {
            Ok(Some(copy)) => (
                match copy.role {
                    DbRole::Primary => DbSaid::Primary,
                    DbRole::Replica(_) => DbSaid::Replica,
                },
                Some(copy),
            ),
            Ok(None) => (DbSaid::Missing, None),
            Err(e) => (DbSaid::Unknown(e.summary()), None),
        };
        DbReading {
            id: c.id().to_string(),
            region,
            said,
            endpoint_moves: copy.as_ref().is_some_and(|c| c.moves_with_primary),
            own_names: copy
                .as_ref()
                .map(|c| c.own_names.clone())
                .unwrap_or_default(),
            endpoint: copy.and_then(|c| c.endpoint),
        }
    }))
    .await
}

/// `records`, read concurrently and mapped to regions (`dbs`: the copies'
/// endpoints, for a record that follows a database).
async fn records(
    clouds: &Clouds,
    plan: &Plan,
    records: &[&dyn Points],
    dbs: &[DbReading],
    timeout: Duration,
) -> Vec<RecordReading> {
    let endpoint = |db: &str, value: &str| {
        let copies = (dbs.iter()).map(|d| placement::CopyAt {
            id: &d.id,
            region: &d.region,
            endpoint: d.endpoint.as_deref(),
            moves: d.endpoint_moves,
            own_names: &d.own_names,
            primary: d.said == DbSaid::Primary,
        });
        placement::followed_region(copies, db, value)
    };
    let read = join_all((records.iter()).map(|d| d.read(clouds, timeout))).await;
    (records.iter().zip(read))
        .map(|(d, read)| RecordReading {
            record: d.id().to_string(),
            said: match read {
                Ok(None) => RecordSaid::Missing,
                Ok(Some(sets)) if sets.is_empty() => RecordSaid::Missing,
                Ok(Some(sets)) => match d.points_to(plan, &sets, &endpoint) {
                    (_, Some(region)) => RecordSaid::Points(region),
                    (values, None) => RecordSaid::Unrecognised(values),
                },
                Err(e) => RecordSaid::Unknown(e.summary()),
            },
        })
        .collect()
}

/// Reads what the cloud says of `plan`'s placement, each read bounded by
/// `timeout`: its database copies, its data-plane controls and the records
/// read without a control plane an outage can take (resolved, or Cloud
/// DNS's global API), all at once; then, unless those already name
/// `journals` (the journals' active region), its records read through
/// Route 53's API ([`Points::read_by_api`]).
pub async fn read(clouds: &Clouds, plan: &Plan, journals: &str, timeout: Duration) -> World {
    let (api, plane): (Vec<&dyn Points>, Vec<&dyn Points>) =
        placement::records(plan).partition(|p| p.read_by_api());
    let (databases, controls) = tokio::join!(
        databases(clouds, plan, timeout),
        placement::controls(clouds, plan, timeout)
    );
    let mut w = World {
        records: records(clouds, plan, &plane, &databases, timeout).await,
        databases,
        controls,
        route53: false,
    };
    let settled = matches!(
        place(plan.regions(), &w),
        Placement::Region { region, .. } if region == journals
    );
    if !settled && !api.is_empty() {
        let more = records(clouds, plan, &api, &w.databases, timeout).await;
        w.records.extend(more);
        w.route53 = true;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::{Outcome, RunKind};
    use crate::watch::decide::Next;
    use chrono::{TimeZone, Utc};

    const W: &str = "us-west-2";
    const E: &str = "us-east-1";
    const EU: &str = "eu-west-1";

    fn regions() -> Vec<String> {
        [W, E, EU].map(String::from).to_vec()
    }

    fn db(region: &str, said: DbSaid) -> DbReading {
        DbReading {
            id: "payments-db".into(),
            region: region.into(),
            said,
            endpoint: None,
            endpoint_moves: false,
            own_names: Vec::new(),
        }
    }

    fn record(id: &str, said: RecordSaid) -> RecordReading {
        RecordReading {
            record: id.into(),
            said,
        }
    }

    fn points(region: &str) -> RecordSaid {
        RecordSaid::Points(region.into())
    }

    fn down() -> DbSaid {
        DbSaid::Unknown("rds DescribeDBInstances failed: connection refused".into())
    }

    /// The seeded payments plan: home primary, both standbys replicas,
    /// both records at home.
    fn healthy() -> World {
        World {
            databases: vec![
                db(W, DbSaid::Primary),
                db(E, DbSaid::Replica),
                db(EU, DbSaid::Replica),
            ],
            controls: Vec::new(),
            records: vec![
                record("api", points(W)),
                record("payments-db-endpoint", points(W)),
            ],
            route53: true,
        }
    }

    fn switch(run: &str, target: &str, minute: u32) -> (Vec<String>, Switch) {
        (
            vec!["payments".into()],
            Switch {
                run_id: run.into(),
                kind: RunKind::Failover,
                target: target.into(),
                started: Utc.with_ymd_and_hms(2025, 1, 1, 0, minute, 0).unwrap(),
                ended: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, minute + 1, 0).unwrap()),
                outcome: Outcome::Succeeded,
                watch: None,
            },
        )
    }

    fn hist(switches: &[(Vec<String>, Switch)]) -> PlanHistory {
        crate::runs::watch::history("payments", W, switches)
    }

    fn judged(w: &World, switches: &[(Vec<String>, Switch)]) -> Judged {
        let p = place(&regions(), w);
        judge("payments", &p, &hist(switches), switches, None)
    }

    #[test]
    fn the_cloud_agreeing_with_the_journals_names_the_region() {
        let j = judged(&healthy(), &[]);
        let Judged::Agreed { region, basis } = &j else {
            panic!("{j:?}");
        };
        assert_eq!(region, W);
        assert!(
            basis.contains("primary") && basis.contains("record api"),
            "{basis}"
        );
        assert!(!j.refuses());
        assert_eq!(verdict(&j, W, Tally::default()), None);
        // After a real failover to us-east-1, before the old primary is
        // reprotected: two primaries, the records settle it.
        let mut w = healthy();
        w.databases[1].said = DbSaid::Primary;
        w.records = vec![
            record("api", points(E)),
            record("payments-db-endpoint", points(E)),
        ];
        let moved = [switch("payments-failover-1", E, 1)];
        let j = judged(&w, &moved);
        assert!(
            matches!(&j, Judged::Agreed { region, .. } if region == E),
            "{j:?}"
        );
    }

    /// The attack of issue 29: a forged "succeeded failover to us-east-1"
    /// journal while the primary and the records are in us-west-2.
    #[test]
    fn a_journal_the_cloud_contradicts_is_distrusted_and_watch_refuses() {
        let forged = [
            switch("payments-real-back-home", W, 1),
            switch("payments-forged", E, 5),
        ];
        let j = judged(&healthy(), &forged);
        assert!(j.refuses(), "{j:?}");
        assert_eq!(j.distrusted(), ["payments-forged"]);
        let Judged::Refused { why, .. } = &j else {
            unreachable!()
        };
        assert!(
            why.contains("journals say payments serves from us-east-1")
                && why.contains("the cloud says us-west-2")
                && why.contains("payments-forged"),
            "{why}"
        );
        let v = verdict(&j, E, Tally::default()).expect("a refusal");
        assert_eq!(v.decision, WatchDecision::Blind);
        assert_eq!(v.next, Next::Nothing);
        assert_eq!((v.target, v.command), (None, None));
        // A region the journals never named: every claim since home is.
        let mut w = healthy();
        w.databases[0].said = DbSaid::Replica;
        w.databases[2].said = DbSaid::Primary;
        w.records = vec![record("api", points(EU))];
        let j = judged(&w, &[switch("payments-a", E, 1)]);
        assert_eq!(j.distrusted(), ["payments-a"]);
        // The cloud moved with no journal at all: refused, nobody named.
        let j = judged(&w, &[]);
        assert!(j.refuses() && j.distrusted().is_empty(), "{j:?}");
        assert!(j.line().contains("no journal records the move"), "{j:?}");
    }

    #[test]
    fn an_ambiguous_cloud_makes_watch_refuse() {
        // Two primaries, no record read: nothing chooses.
        let mut w = healthy();
        w.databases[1].said = DbSaid::Primary;
        w.records.clear();
        let p = place(&regions(), &w);
        assert!(
            matches!(&p, Placement::Ambiguous { why } if why.contains("us-west-2 and us-east-1")),
            "{p:?}"
        );
        assert!(judged(&w, &[]).refuses());
        // Records split between two regions.
        let mut w = healthy();
        w.records[1].said = points(E);
        let p = place(&regions(), &w);
        assert!(
            matches!(&p, Placement::Ambiguous { why } if why.starts_with("traffic is split")),
            "{p:?}"
        );
        let j = judged(&w, &[]);
        assert!(j.refuses() && j.distrusted().is_empty(), "{j:?}");
        // Traffic sent to a replica.
        let mut w = healthy();
        w.records = vec![record("api", points(E))];
        assert!(matches!(place(&regions(), &w), Placement::Ambiguous { .. }));
        // Traffic at a region whose control drains.
        let mut w = healthy();
        w.controls = vec![ControlReading {
            record: "checkout".into(),
            region: W.into(),
            said: ControlSaid::Drain,
        }];
        w.records = vec![record("api", points(W))];
        assert!(matches!(place(&regions(), &w), Placement::Ambiguous { .. }));
        // Two data-plane controls serving.
        let mut w = healthy();
        w.records.clear();
        w.controls = [W, E]
            .map(|r| ControlReading {
                record: "checkout".into(),
                region: r.into(),
                said: ControlSaid::Serve,
            })
            .to_vec();
        assert!(matches!(place(&regions(), &w), Placement::Ambiguous { .. }));
    }

    /// Home does not answer: its database is unknown, never evidence. The
    /// records (Route 53 is global) still point at it, or, when no record
    /// was read, every standby answered as a replica: home, by
    /// elimination, agreeing with the journals: watch may fail it over.
    #[test]
    fn home_unreachable_is_placed_by_the_records_or_by_elimination() {
        let mut w = healthy();
        w.databases[0].said = down();
        let j = judged(&w, &[]);
        assert!(
            matches!(&j, Judged::Agreed { region, .. } if region == W),
            "{j:?}"
        );
        w.records.clear();
        let p = place(&regions(), &w);
        assert!(
            matches!(&p, Placement::Region { region, basis } if region == W && basis.starts_with("by elimination")),
            "{p:?}"
        );
        assert!(!judged(&w, &[]).refuses());
        // A forged journal naming a standby that answers as a replica: the
        // cloud (by elimination) contradicts it.
        let j = judged(&w, &[switch("payments-forged", E, 1)]);
        assert_eq!(j.distrusted(), ["payments-forged"]);
        // Two regions that do not answer: elimination cannot choose, and
        // the journals alone are not trusted.
        w.databases[2].said = down();
        let p = place(&regions(), &w);
        assert!(matches!(&p, Placement::Unknown { .. }), "{p:?}");
        let j = judged(&w, &[]);
        assert!(j.refuses(), "{j:?}");
        // Nothing answered at all (this observer's own network).
        let w = World {
            databases: vec![db(W, down()), db(E, down())],
            records: vec![record("api", RecordSaid::Unknown("timeout".into()))],
            ..World::default()
        };
        assert!(
            matches!(place(&regions(), &w), Placement::Unknown { why } if why.starts_with("nothing answered"))
        );
        // A data-plane plan whose home's control does not answer while
        // the others drain, resolution still home: home.
        let w = World {
            databases: vec![db(W, down()), db(E, DbSaid::Replica)],
            controls: vec![
                ControlReading {
                    record: "checkout".into(),
                    region: W.into(),
                    said: ControlSaid::Unknown("no answer".into()),
                },
                ControlReading {
                    record: "checkout".into(),
                    region: E.into(),
                    said: ControlSaid::Drain,
                },
            ],
            records: vec![record("checkout", points(W))],
            route53: false,
        };
        assert!(!judged(&w, &[]).refuses());
    }

    /// After a failover to us-east-1 (the old primary not reprotected),
    /// us-east-1 fails: its database does not answer, the old primary
    /// still does. The records (Route 53 API) still point at us-east-1;
    /// a data-plane name resolves wherever its fail-closed chain ends, and
    /// the drained controls rule the others out.
    #[test]
    fn the_active_region_failing_after_a_failover_is_still_the_active_one() {
        let moved = [switch("payments-failover-1", E, 1)];
        let mut w = healthy();
        w.databases[1].said = down();
        w.records = vec![
            record("api", points(E)),
            record(
                "payments-db-endpoint",
                RecordSaid::Unrecognised(vec!["x.".into()]),
            ),
        ];
        let j = judged(&w, &moved);
        let Judged::Agreed { region, basis } = &j else {
            panic!("{j:?}");
        };
        assert_eq!(region, E);
        assert!(basis.contains("us-west-2 still holds a primary"), "{basis}");
        let control = |region: &str, said| ControlReading {
            record: "checkout".into(),
            region: region.into(),
            said,
        };
        let w = World {
            databases: vec![
                db(W, DbSaid::Primary),
                db(E, down()),
                db(EU, DbSaid::Replica),
            ],
            controls: vec![
                control(W, ControlSaid::Drain),
                control(E, ControlSaid::Unknown("no answer".into())),
                control(EU, ControlSaid::Drain),
            ],
            records: vec![record("checkout", points(W))],
            route53: false,
        };
        let j = judged(&w, &moved);
        assert!(
            matches!(&j, Judged::Agreed { region, .. } if region == E),
            "{j:?}"
        );
    }

    #[test]
    fn a_run_moving_the_plan_is_waited_for_and_a_plan_with_nothing_to_read_follows_its_journals() {
        // Promoted and switched, its journal still open (the journals say
        // home until it ends).
        let mut w = healthy();
        w.databases[1].said = DbSaid::Primary;
        w.records = vec![record("api", points(E))];
        let p = place(&regions(), &w);
        let j = judge("payments", &p, &hist(&[]), &[], Some("payments-run"));
        assert!(
            matches!(&j, Judged::Moving { run, .. } if run == "payments-run"),
            "{j:?}"
        );
        let v = verdict(&j, W, Tally::default()).unwrap();
        assert_eq!(v.decision, WatchDecision::Busy);
        assert_eq!(v.next, Next::Nothing);
        let j = judge("payments", &Placement::Nothing, &hist(&[]), &[], None);
        assert_eq!(j, Judged::JournalsOnly { region: W.into() });
    }

    /// Every reference plan and the plans on GCP, seeded as the simulator
    /// seeds them (home serving, standbys ready).
    fn seeded() -> (Vec<Plan>, crate::cloud::fake::FakeCloud) {
        let plans = crate::plan::reference_with_gcp();
        let model = crate::cloud::model::Model::aws().unwrap();
        let world = crate::sim::paused(crate::sim::world_for(model, &plans, 1));
        (plans, world)
    }

    /// Regression (watch was blind to the data kinds it did not name):
    /// placement read `[[database]]` copies only, so `orders` (an Aurora
    /// global database, its record following the writer) was never
    /// placed, and a plan of GCP kinds fell back to its journals alone. It
    /// reads every data kind through the data role now: every plan is
    /// placed at its home, from the cloud, by its data copies.
    #[test]
    fn regression_watch_places_every_plan_from_the_cloud_whatever_its_data_kinds() {
        let (plans, world) = seeded();
        let clouds = world.clouds();
        for p in &plans {
            let w = crate::sim::paused(read(&clouds, p, "elsewhere", Duration::from_secs(5)));
            let data = each(&p.spec)
                .iter()
                .any(|r| matches!(r.shown(), Shown::Data(_)));
            if data {
                assert!(
                    w.databases.iter().any(|d| d.said == DbSaid::Primary),
                    "{}: {:?}",
                    p.name(),
                    w.databases
                );
            }
            match place(p.regions(), &w) {
                Placement::Region { region, .. } => {
                    assert_eq!(region, p.home(), "{}: {w:?}", p.name())
                }
                other => panic!("{}: {other:?} from {w:?}", p.name()),
            }
        }
        let names: Vec<&str> = plans.iter().map(|p| p.name()).collect();
        for must in ["orders", "orders-gcp", "storefront", "payments"] {
            assert!(names.contains(&must), "{names:?}");
        }
    }

    /// Regression (watch read `[[dns]]` records alone): a plan's Cloud
    /// DNS record was never read, so a record someone pointed at a standby
    /// whose database is a replica went unseen and watch named home. It
    /// reads every traffic kind through the traffic role now.
    #[test]
    fn regression_watch_reads_where_a_cloud_dns_record_points() {
        let (plans, world) = seeded();
        let clouds = world.clouds();
        let p = (plans.iter().find(|p| p.name() == "orders-gcp")).expect("the GCP plan");
        let d = &p.spec.cloud_dns[0];
        let said = |w: &World| {
            (w.records.iter())
                .find(|r| r.record == d.id)
                .map(|r| r.said.clone())
        };
        let w = crate::sim::paused(read(&clouds, p, "elsewhere", Duration::from_secs(5)));
        assert_eq!(said(&w), Some(RecordSaid::Points(p.home().into())), "{w:?}");
        // Pointed by hand at the standby, whose database is a replica.
        let standby = &p.regions()[1];
        let value = d.targets[d.sites.gcp(standby)].clone();
        for set in (world.state().cloud_rrsets.values_mut()).filter(|r| r.name == d.name) {
            set.rrdatas = vec![value.clone()];
        }
        let w = crate::sim::paused(read(&clouds, p, "elsewhere", Duration::from_secs(5)));
        assert_eq!(said(&w), Some(RecordSaid::Points(standby.clone())), "{w:?}");
        match place(p.regions(), &w) {
            Placement::Ambiguous { why } => assert!(why.contains(&d.id), "{why}"),
            other => panic!("{other:?} from {w:?}"),
        }
    }
}
