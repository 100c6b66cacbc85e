//! What the drills of a plan's data share, whatever the kind: the wait for
//! a copy's first lag datapoint (a drill's measured RPO) and the removal of
//! a copy a drill made (an RDS instance, an Aurora cluster).
//!
//! Why one place: a removal is where a drill could destroy what is not its
//! own. The rule (a copy without a drill's run tag is never touched; one
//! with another drill's tag is that drill's; deleted, then read until gone,
//! its last status said when it is not) is written once here, and each kind
//! says only how its copy is read and deleted. Step kinds share this module,
//! never each other.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Cx, drill_names};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, LagReading};
use crate::journal::CleanupResult;

/// How long a drill waits for a first lag datapoint of its copy (RDS
/// publishes `ReplicaLag` about once a minute).
pub const LAG_WAIT: Duration = Duration::from_secs(150);

/// Waits (up to [`LAG_WAIT`], within the step's budget) for a reading of
/// a lag with at least one datapoint, read by `read`; `what` names it for
/// the live view when the first look finds none. `Ok(None)`: none came.
/// A drill's measured RPO is such a first reading: of its temporary
/// replica here, of the secondary it clones in `drill-global`.
pub async fn first_datapoint<F, Fut>(
    cx: &Cx<'_>,
    what: &str,
    read: F,
) -> Result<Option<LagReading>, CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<LagReading, CloudError>>,
{
    let until = (Instant::now() + LAG_WAIT).min(cx.deadline);
    let told = AtomicBool::new(false);
    poll_until(what, cx.poll, until, || {
        let (read, told) = (&read, &told);
        async move {
            let r = read().await?;
            if r.datapoints > 0 {
                return Ok(Some(r));
            }
            if Instant::now() < until
                && !told.swap(true, Ordering::Relaxed)
                && let Some(tell) = cx.waiting
            {
                tell(what);
            }
            Ok::<_, CloudError>(None)
        }
    })
    .await
}

/// A drill's copy as a removal read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The drill run its tag names (`None`: no drill tag).
    pub run: Option<String>,
    /// Its provider status.
    pub status: String,
}

impl Seen {
    /// The copy with `tags` and `status`.
    pub fn of(tags: &BTreeMap<String, String>, status: String) -> Self {
        Self {
            run: tags.get(drill_names::RUN_TAG).cloned(),
            status,
        }
    }
}

/// Which copy a removal is of, and how its sentences name it.
#[derive(Debug, Clone, Copy)]
pub struct Copy<'a> {
    /// Its provider id.
    pub id: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The call that reads it (`DescribeDBInstances`).
    pub read_call: &'a str,
    /// What deleting it does (`deleted with its instances`).
    pub deleted: &'a str,
}

/// Deletes a drill's copy and reads it (`read`) until it is gone.
/// `expected_run`: the drill that must have tagged it (`None`: any drill,
/// for a sweep). A copy without a drill's tag, or with another drill's
/// when one is expected, is never touched.
pub async fn remove_tagged<R, RF, D, DF>(
    copy: Copy<'_>,
    expected_run: Option<&str>,
    (read, delete): (R, D),
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError>
where
    R: Fn() -> RF,
    RF: Future<Output = Result<Option<Seen>, CloudError>>,
    D: FnOnce() -> DF,
    DF: Future<Output = Result<(), CloudError>>,
{
    let Copy { id, region, .. } = copy;
    let Some(seen) = read().await? else {
        return Ok((
            CleanupResult::Absent,
            format!("{} finds no {id} in {region}", copy.read_call),
        ));
    };
    if let Some(refused) = not_ours(id, seen.run.as_deref(), expected_run) {
        return Ok((CleanupResult::NotOurs, refused));
    }
    delete().await?;
    // The status of the copy at the last look that still found it.
    let last = Mutex::new(String::new());
    let gone = poll_until(&format!("{id} to be deleted"), poll, deadline, || {
        let (read, last) = (&read, &last);
        async move {
            Ok(match read().await? {
                None => Some(()),
                Some(s) => {
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = s.status;
                    None
                }
            })
        }
    })
    .await?;
    Ok(match gone {
        Some(()) => (
            CleanupResult::Removed,
            format!(
                "{}; {} then found no {id} in {region}",
                copy.deleted, copy.read_call
            ),
        ),
        None => (
            CleanupResult::Failed,
            format!(
                "deletion requested, but {id} is still there ({}); it may finish on its own",
                last.into_inner().unwrap_or_else(|p| p.into_inner())
            ),
        ),
    })
}

/// Why a copy tagged `tagged` is not this removal's (pure): no drill tag,
/// or another drill's when `expected` names one.
fn not_ours(id: &str, tagged: Option<&str>, expected: Option<&str>) -> Option<String> {
    match (tagged, expected) {
        (None, _) => Some(format!(
            "{id} carries no {} tag: not a drill's",
            drill_names::RUN_TAG
        )),
        (Some(tagged), Some(run)) if tagged != run => {
            Some(format!("{id} belongs to drill {tagged}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_without_the_tag_or_with_another_drills_is_not_ours() {
        let said = not_ours("c", None, Some("r1")).unwrap();
        assert!(said.contains("carries no drctl:drill-run tag"), "{said}");
        assert_eq!(
            not_ours("c", Some("r2"), Some("r1")).as_deref(),
            Some("c belongs to drill r2")
        );
        assert_eq!(not_ours("c", Some("r1"), Some("r1")), None);
        assert_eq!(not_ours("c", Some("r2"), None), None, "a sweep's");
    }
}
