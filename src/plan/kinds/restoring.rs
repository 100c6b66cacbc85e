//! The data role's point-in-time restore: what the one generic `restore`
//! step (`steps::restore`) asks of a data kind whose copies can be
//! restored to a point in time, into a new copy (an RDS instance, a Cloud
//! SQL instance cloned at a point in time), so a data kind's restore is
//! this role and nothing in `steps/`. A drill that clones a Cloud SQL
//! primary goes through the data role's drill copy (`drilling`, the
//! generic `drill-copy` step), whose `SqlDrilling` makes its clone with
//! this role's `source` and `start`, its operation read through
//! `SqlOperations`.
//!
//! # Why addressed by the kind, not the plan's resource
//!
//! A resumed run and `status` know the step (its kind, region and the
//! source's address, `project/instance` for Cloud SQL), not always the
//! plan's resource: the actions are reached through the kind
//! ([`ResourceKind::restoring`](super::ResourceKind::restoring)), never a
//! `match` on kinds. What to restore to is decided once, for every kind,
//! by [`decide_point`] (pure): the kind reads and acts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::cloud::{CloudError, Clouds, ReplicaPlacement, RestorePoint};

/// What a data kind's restores are, in words and calls: the same for every
/// copy of the kind, so one value ([`Restoring::about`]).
#[derive(Debug, Clone, Copy)]
pub struct RestoreAbout {
    /// What a copy is called in sentences (`database`, `cloud sql`).
    pub noun: &'static str,
    /// How the restore makes the new copy, for a step's description
    /// (`into a new instance`).
    pub how: &'static str,
    /// The state the new copy serves in (`available`, `RUNNABLE`).
    pub ready: &'static str,
    /// Where the latest point is read, as an output says where its RPO
    /// comes from (`LatestRestorableTime reported by the provider`).
    pub latest_from: &'static str,
    /// What to do when the source has no point to restore to (backups or
    /// point-in-time recovery off).
    pub no_window_hint: &'static str,
    /// The call that starts a restore (`rds:RestoreDBInstanceToPointInTime`),
    /// as previews and fences name it.
    pub call: &'static str,
    /// The call that makes a restored copy serve, when the restore alone
    /// does not (an Aurora cluster's writer, `rds:CreateDBInstance`:
    /// Aurora restores a cluster's volume, never its instances); `None`:
    /// the restored copy serves as made.
    pub finish_call: Option<&'static str>,
    /// The calls a restore makes once.
    pub calls: &'static [&'static str],
    /// The model's slow operations a restore waits through.
    pub waits: &'static [&'static str],
    /// The call its wait polls.
    pub polls: &'static str,
}

/// What a plan says of a copy restored in a region besides its address:
/// whose backups it is made from, and where it is placed. Empty for a kind
/// that restores a copy from itself (a point-in-time restore beside it).
///
/// Why not in the address: a backup standby's restore reads the copies of
/// the other regions (its home's, or after a failover the new primary's),
/// and is placed where the plan says (no instance there to copy it from);
/// a step records it beside the address, so a resume restores the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The copies, in other regions, whose backups it is made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Its network, class and tags.
    #[serde(default)]
    pub place: ReplicaPlacement,
}

impl Placement {
    /// Whether it says nothing (what a step leaves out of its record).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The tag a restore's new copy carries where its kind places copies
/// with tags: the run that asked for it. A backup standby's restore takes
/// the plan's name, so a copy found under it is the restore's only when
/// it carries this tag (a resumed run), never someone else's instance.
pub const RESTORED_BY_TAG: &str = "drctl:restored-by";

/// The tag a restore's new copy carries where its kind places copies
/// with marks: the point it restores to, in seconds since the epoch (a
/// form Cloud SQL's labels take too).
pub const RESTORE_POINT_TAG: &str = "drctl:restore-point";

/// The point a copy's marks say it was restored to ([`RESTORE_POINT_TAG`]
/// under `key`, the kind's spelling of it).
pub fn marked_point(
    marks: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Option<DateTime<Utc>> {
    let secs = marks.get(key)?.parse::<i64>().ok()?;
    DateTime::from_timestamp(secs, 0)
}

/// The times a copy can be restored to, as its provider reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// The earliest, when reported.
    pub earliest: Option<DateTime<Utc>>,
    /// The latest, when reported.
    pub latest: Option<DateTime<Utc>>,
}

/// A copy a restore starts from, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What a preflight says of it (`available, backups kept 7 days`).
    pub said: String,
    /// The times it can be restored to; `Err(why)`: none (automated
    /// backups or point-in-time recovery off), in words.
    pub window: Result<Window, String>,
    /// What the region lacks for a restore to serve there, each with its
    /// fix (a backup standby's DB subnet group; its name taken by another
    /// instance): the restore is refused before any call, and `status`
    /// names each.
    pub lacks: Vec<(String, String)>,
}

/// A restored copy, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Its state in the provider's words.
    pub state: String,
    /// Whether it serves (the state [`RestoreAbout::ready`] names).
    pub ready: bool,
    /// Whether it is made but cannot serve until the kind's finishing call
    /// ([`RestoreAbout::finish_call`], [`Restoring::finish`]) is made.
    pub finish_due: bool,
    /// Its endpoint, when it has one.
    pub endpoint: Option<String>,
    /// Its port, when the provider says it.
    pub port: Option<i32>,
    /// The point it was restored to, as the restore marked it on the copy
    /// ([`RESTORE_POINT_TAG`], where the kind's copies carry marks): what
    /// a resume that did not ask for the restore measures the RPO from.
    pub point: Option<DateTime<Utc>>,
}

/// What a restore asks for: the point to send, the point known (the RPO is
/// measured from it; `None`: unknown), and where that came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// What the call is asked to restore to.
    pub ask: RestorePoint,
    /// The point restored to, as known before the call.
    pub known: Option<DateTime<Utc>>,
    /// Where `known` comes from, in words.
    pub basis: &'static str,
}

/// Decides what to restore to (pure): the requested time, checked against
/// the source's window, else its latest point. `Err((why, hint))` when the
/// source has no window or the time is outside it.
pub fn decide_point(
    about: &RestoreAbout,
    window: &Result<Window, String>,
    requested: Option<DateTime<Utc>>,
) -> Result<Point, (String, String)> {
    let w = match window {
        Ok(w) => w,
        Err(why) => {
            let why = format!("{why}: no point-in-time restore is possible");
            return Err((why, about.no_window_hint.to_string()));
        }
    };
    let Some(at) = requested else {
        return Ok(Point {
            ask: RestorePoint::Latest,
            known: w.latest,
            basis: if w.latest.is_some() {
                about.latest_from
            } else {
                "unknown: the provider reported no latest restorable time"
            },
        });
    };
    let hint = "pick a time inside the window, or --latest".to_string();
    if let Some(latest) = w.latest.filter(|l| at > *l) {
        return Err((
            format!("{at} is after the latest restorable time {latest}"),
            hint,
        ));
    }
    if let Some(earliest) = w.earliest.filter(|e| at < *e) {
        return Err((
            format!("{at} is before the earliest restorable time {earliest}"),
            hint,
        ));
    }
    Ok(Point {
        ask: RestorePoint::At(at),
        known: Some(at),
        basis: "the requested --to-time",
    })
}

/// The name of the copy a run restores `source` into: stable per run, at
/// most 63 characters (RDS's limit; Cloud SQL's, with its project prefix,
/// is larger).
pub fn restored_id(source: &str, run_id: &str) -> String {
    let tag: String = (run_id.chars().rev())
        .filter(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect::<String>()
        .to_lowercase();
    let base: String = source.chars().take(63 - 10).collect();
    format!("{base}-r{tag}")
}

/// The data role's restore actions on one kind's copies, addressed by the
/// region and the address a step records (`project/instance` for a kind
/// whose copies live in a project). Each is the kind's to answer: none has
/// a default but [`Restoring::finish`], which only a kind whose restored
/// copies need a second call answers.
#[async_trait]
pub trait Restoring: Sync {
    /// What the kind's restores are, in words and calls.
    fn about(&self) -> &'static RestoreAbout;
    /// The address of the new copy a run restores `source` into: stable
    /// per run, so a re-run finds the copy it already asked for.
    fn restored(&self, source: &str, run_id: &str) -> String;
    /// Reads `source` in `region` for a restore placed as `placement`
    /// says (`Ok(None)`: it does not exist).
    async fn source(
        &self,
        clouds: &Clouds,
        region: &str,
        source: &str,
        placement: &Placement,
    ) -> Result<Option<Source>, CloudError>;
    /// Reads a restored copy (`Ok(None)`: it does not exist).
    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<Restored>, CloudError>;
    /// The provider's operation making `copy` when one is under way (a
    /// resumed run's: the restore was asked for and the copy is not there
    /// yet); `None` for a kind whose restores answer none.
    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<String>, CloudError>;
    /// Starts restoring `source` into `copy` at `point`, placed as
    /// `placement` says. Returns the provider's operation to follow
    /// ([`Restoring::answers`]), when the call answers one.
    async fn start(
        &self,
        clouds: &Clouds,
        region: &str,
        (source, copy): (&str, &str),
        point: Point,
        placement: &Placement,
    ) -> Result<Option<String>, CloudError>;
    /// Makes the restored `copy` serve, placed as `placement` says, once
    /// it is read [`Restored::finish_due`] (an Aurora cluster's writer).
    /// Read before acting: what an earlier attempt asked for is not asked
    /// again. Asked only of a kind with a [`RestoreAbout::finish_call`]:
    /// the others' copies serve as made, so it is the one default.
    async fn finish(
        &self,
        _clouds: &Clouds,
        _region: &str,
        _copy: &str,
        _placement: &Placement,
    ) -> Result<(), CloudError> {
        Ok(())
    }
    /// How its writes are answered: at once, or with a provider
    /// operation the step follows until it is done ([`super::Answers`]).
    fn answers(&self) -> super::Answers<'_>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABOUT: RestoreAbout = RestoreAbout {
        noun: "database",
        how: "into a new instance",
        ready: "available",
        latest_from: "LatestRestorableTime",
        no_window_hint: "enable backups",
        call: "rds:RestoreDBInstanceToPointInTime",
        finish_call: None,
        calls: &[],
        waits: &[],
        polls: "rds:DescribeDBInstances",
    };

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_point_is_the_requested_time_inside_the_window_else_the_latest() {
        let w = Ok(Window {
            earliest: Some(at("2026-11-20T00:00:00Z")),
            latest: Some(at("2026-11-27T10:00:00Z")),
        });
        let latest = decide_point(&ABOUT, &w, None).unwrap();
        assert_eq!(latest.ask, RestorePoint::Latest);
        assert_eq!(latest.known, Some(at("2026-11-27T10:00:00Z")));
        assert_eq!(latest.basis, "LatestRestorableTime");
        let asked = decide_point(&ABOUT, &w, Some(at("2026-11-26T00:00:00Z"))).unwrap();
        assert_eq!(asked.ask, RestorePoint::At(at("2026-11-26T00:00:00Z")));
        assert_eq!(asked.known, Some(at("2026-11-26T00:00:00Z")));
        let after = decide_point(&ABOUT, &w, Some(at("2026-11-27T10:00:01Z"))).unwrap_err();
        assert!(
            after.0.contains("after the latest restorable time"),
            "{after:?}"
        );
        let before = decide_point(&ABOUT, &w, Some(at("2026-11-19T00:00:00Z"))).unwrap_err();
        assert!(before.0.contains("before the earliest"), "{before:?}");
        // Both edges are inside the window.
        for edge in ["2026-11-20T00:00:00Z", "2026-11-27T10:00:00Z"] {
            assert_eq!(
                decide_point(&ABOUT, &w, Some(at(edge))).unwrap().known,
                Some(at(edge))
            );
        }
    }

    #[test]
    fn no_window_refuses_with_the_kinds_hint_and_an_unreported_latest_is_unknown() {
        let off = decide_point(&ABOUT, &Err("automated backups are off".into()), None);
        assert_eq!(
            off.unwrap_err(),
            (
                "automated backups are off: no point-in-time restore is possible".into(),
                "enable backups".into()
            )
        );
        let open = decide_point(&ABOUT, &Ok(Window::default()), None).unwrap();
        assert_eq!(open.known, None);
        assert!(open.basis.starts_with("unknown"), "{}", open.basis);
        // A requested time with no window reported is taken as asked: the
        // provider refuses one outside it.
        let asked = decide_point(
            &ABOUT,
            &Ok(Window::default()),
            Some(at("2026-11-26T00:00:00Z")),
        );
        assert_eq!(asked.unwrap().known, Some(at("2026-11-26T00:00:00Z")));
    }
}
