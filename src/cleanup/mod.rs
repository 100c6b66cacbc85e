//! Cleanup dispatch: removing what a drill created, each resource by its
//! own kind's knowledge.
//!
//! A drill's resources are named in its journal ([`Temp`], written before
//! each is created) and by tags and names (`crate::steps::drill_names`).
//! Removal is each drill kind's own function (`steps::drill_*`); this module
//! only dispatches to them, proves each removal with a read, and journals
//! what it found. The engine calls it on every ending of
//! a drill, and [`sweep`] for what no journal names. A raised group is
//! lowered only when [`owner`] shows it is still the drill's: a drill
//! never fights a failover for capacity.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloud::{CloudError, Clouds};
use crate::journal::{Cleaned, CleanupResult, Temp};
use crate::plan::kinds::traffic::Zone;
use crate::plan::spec::ResourceKind;
pub use crate::steps::capacity::CapacityOwner;
use crate::steps::drill_raise::{Claim, Pace, RaisedGroup};
use crate::steps::{drill_control, drill_copy, drill_dns, drill_raise};

pub mod owner;
pub mod sweep;

/// Removes (or restores) `temp` and proves it with a read afterwards.
/// `run_id` is the drill's: a resource tagged by another run is never
/// touched. `owner` says who owns a raised group's capacity (only the
/// drill's own is lowered; see [`owner`]); other resources are the drill's.
pub async fn remove(
    temp: &Temp,
    clouds: &Clouds,
    run_id: &str,
    owner: &CapacityOwner,
    poll: (Duration, Duration),
    deadline: std::time::Instant,
) -> Cleaned {
    dispatch(temp, clouds, Some(run_id), owner, poll, deadline).await
}

/// Removes every one of `temps` ([`remove`]), the records first and then
/// the rest at once: a record follows a health check (which Route 53 will
/// not delete while a record uses it) and may point at a database.
/// `owners` decides who owns each raised group's capacity, called once the
/// records are gone, right before the groups are returned (so that the
/// decision is as fresh as it can be); a group it leaves out is kept.
pub async fn remove_all(
    temps: &[Temp],
    clouds: &Clouds,
    run_id: &str,
    owners: impl AsyncFnOnce(Vec<Temp>) -> BTreeMap<Temp, CapacityOwner>,
    poll: (Duration, Duration),
    deadline: std::time::Instant,
) -> Vec<Cleaned> {
    let (records, rest): (Vec<&Temp>, Vec<&Temp>) =
        (temps.iter()).partition(|t| t.drill_record().is_some());
    let drill = CapacityOwner::Drill("the drill's own resource".into());
    let mut out = futures::future::join_all(
        records
            .into_iter()
            .map(|t| remove(t, clouds, run_id, &drill, poll, deadline)),
    )
    .await;
    let groups: Vec<Temp> = rest
        .iter()
        .filter(|t| !t.drill_only())
        .map(|t| (*t).clone())
        .collect();
    let decided = if groups.is_empty() {
        BTreeMap::new()
    } else {
        owners(groups).await
    };
    let undecided = CapacityOwner::Unknown("no owner was decided for it".into());
    out.extend(
        futures::future::join_all(rest.into_iter().map(|t| {
            let owner = if t.drill_only() {
                &drill
            } else {
                decided.get(t).unwrap_or(&undecided)
            };
            remove(t, clouds, run_id, owner, poll, deadline)
        }))
        .await,
    );
    out
}

/// One removal by its kind's own function; `run` is the drill's when known
/// (a sweep has none: it found the resource by its tags or name).
async fn dispatch(
    temp: &Temp,
    clouds: &Clouds,
    run: Option<&str>,
    owner: &CapacityOwner,
    poll: (Duration, Duration),
    deadline: std::time::Instant,
) -> Cleaned {
    let (claim, pace) = (Claim { run, owner }, Pace { poll, deadline });
    let result = match temp {
        t @ (Temp::Copy { .. }
        | Temp::Database { .. }
        | Temp::Cluster { .. }
        | Temp::SqlClone { .. }) => match t.copy() {
            Some((kind, region, address)) => {
                let at = (kind, region, address.as_str());
                drill_copy::remove(clouds, at, run, poll, deadline).await
            }
            None => Ok((CleanupResult::Failed, format!("{t} names no drill copy"))),
        },
        Temp::Capacity { region, group } => {
            let at = RaisedGroup {
                kind: ResourceKind::Compute,
                region,
                group,
            };
            drill_raise::restore_from_marks(clouds, at, claim, pace).await
        }
        t @ Temp::NodeCapacity { .. } => older_nodes(clouds, t, owner, pace).await,
        t @ Temp::MigSize { .. } => older_mig(clouds, t, owner, pace).await,
        t @ Temp::RunFloor { .. } => Ok(run_floor_left(t)),
        Temp::Raised {
            kind,
            region,
            group,
            restore,
        } => {
            let at = RaisedGroup {
                kind: *kind,
                region,
                group,
            };
            drill_raise::restore(clouds, at, *restore, claim, pace).await
        }
        t @ (Temp::Record { .. } | Temp::CloudRecord { .. }) => match t.drill_record() {
            Some((kind, project, zone, name, rtype)) => match Zone::of(kind, project, zone) {
                Some(z) => drill_dns::remove(clouds, z, (name, rtype), poll, deadline).await,
                None => Ok((
                    CleanupResult::Failed,
                    format!("{t}: {} has no zones", kind.table()),
                )),
            },
            None => Ok((CleanupResult::Failed, format!("{t} names no drill record"))),
        },
        Temp::Control { region, url } => drill_control::remove_control(clouds, region, url).await,
        Temp::HealthCheck { region, control } => {
            drill_control::remove_health_check(clouds, region, control).await
        }
    };
    cleaned(temp, result)
}

/// An EKS node group an older drctl's `drill-nodes` raised (its restore
/// point journaled, the node group never marked), returned through the
/// capacity role as `cluster/nodegroup`.
async fn older_nodes(
    clouds: &Clouds,
    temp: &Temp,
    owner: &CapacityOwner,
    pace: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    let Temp::NodeCapacity {
        region,
        cluster,
        group,
        restore,
    } = temp
    else {
        return Ok((CleanupResult::Failed, format!("{temp} is no node group")));
    };
    let name = format!("{cluster}/{group}");
    let at = RaisedGroup {
        kind: ResourceKind::NodeGroup,
        region,
        group: &name,
    };
    let size = crate::cloud::Size::Bounds(*restore);
    drill_raise::restore_unmarked(clouds, at, size, owner, pace).await
}

/// A managed instance group an older drctl's `drill-mig` raised (its
/// restore point journaled with the autoscaler whose minimum it was, the
/// group never marked), returned through the capacity role as
/// `project/group`, but only while the group is sized as the drill found
/// it: by that autoscaler's minimum, or by its target size when the drill
/// named none. An autoscaler attached or taken away since makes the
/// journaled number another setting's, and nothing is written (one
/// autoscaler replaced by another is not told apart: the role reads
/// whether a group has one, by its ceiling).
async fn older_mig(
    clouds: &Clouds,
    temp: &Temp,
    owner: &CapacityOwner,
    pace: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    let Temp::MigSize {
        region,
        project,
        group,
        autoscaler,
        restore,
    } = temp
    else {
        return Ok((
            CleanupResult::Failed,
            format!("{temp} is no instance group"),
        ));
    };
    let name = format!("{project}/{group}");
    let kind = ResourceKind::InstanceGroup.table();
    let Some(now) = clouds
        .capacity
        .get(kind, region)?
        .read(region, &name)
        .await?
    else {
        let gone = format!("group {group} does not exist in {region}");
        return Ok((CleanupResult::Absent, gone));
    };
    // A group with an autoscaler reads with a ceiling (its maximum), and
    // its size is the autoscaler's minimum.
    if now.ceiling.is_some() != autoscaler.is_some() {
        let said = match autoscaler {
            Some(a) => format!("autoscaler {a}"),
            None => "no autoscaler".to_string(),
        };
        let has = match now.ceiling {
            Some(_) => "an autoscaler",
            None => "no autoscaler",
        };
        return Ok((
            CleanupResult::Failed,
            format!(
                "left alone: the drill's journal names {said} of group {group}, which has {has} now: {restore} is not its setting to return to"
            ),
        ));
    }
    let at = RaisedGroup {
        kind: ResourceKind::InstanceGroup,
        region,
        group: &name,
    };
    let size = crate::cloud::Size::Count(*restore);
    drill_raise::restore_unmarked(clouds, at, size, owner, pace).await
}

/// What is left of a Cloud Run floor raised by a drctl before Cloud Run's
/// service-level floor: that drill raised the revision-level floor, which
/// this drctl never writes (each write deploys a revision), so it is left
/// to a person, named with the command that returns it.
fn run_floor_left(t: &Temp) -> (CleanupResult, String) {
    (
        CleanupResult::Failed,
        format!(
            "raised by an older drctl's `drill-run` (the revision-level floor, which this drctl does not write): {}",
            crate::steps::drill_names::manual_removal(t)
        ),
    )
}

/// The journal's account of `temp`'s cleanup: what its kind's removal
/// found, or a failure carrying the error that stopped it.
fn cleaned(temp: &Temp, result: Result<(CleanupResult, String), CloudError>) -> Cleaned {
    match result {
        Ok((result, detail)) => Cleaned {
            resource: temp.clone(),
            result,
            detail,
        },
        Err(e) => Cleaned {
            resource: temp.clone(),
            result: CleanupResult::Failed,
            detail: e.to_string(),
        },
    }
}
