//! The data role's promotion: what the one generic `promote` step
//! (`steps::promote`) asks of a data kind whose standby copy becomes the
//! primary in a failover (an RDS read replica promoted; a Cloud SQL
//! replica promoted, failed over to as its primary's DR replica, or
//! switched over to in a planned move; an Aurora global database's
//! secondary failed over to with data loss allowed, switched over to, or
//! detached when the managed failover is refused), so a data kind's
//! promotion is this role and nothing in `steps/`.
//!
//! # Why the decision is here, pure
//!
//! Which move to make is the same rule for every kind: nothing when the
//! copy is a primary already, wait on a move of ours still under way (a
//! resumed run, a lost answer), wait for a replica that does not serve
//! yet, refuse a copy the plan calls a DR replica that the provider does
//! not, else promote (or, for a DR replica, switch over when the run is
//! planned and fail over when it is not). [`decide`] says it from what the
//! kind read; the kind reads and acts. A copy is addressed as its kind's
//! steps record it (`project/instance` for Cloud SQL), reached through the
//! kind ([`ResourceKind::promoting`](super::ResourceKind::promoting)),
//! never a `match` on kinds.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RpoSource;
use crate::cloud::{CloudError, Clouds, DbRole, LagReading};

/// What a data kind's promotions are, in words and calls: the same for
/// every copy of the kind, so one value ([`Promoting::about`]).
#[derive(Debug, Clone, Copy)]
pub struct PromoteAbout {
    /// What a copy is called in sentences (`database`, `Cloud SQL instance`).
    pub noun: &'static str,
    /// What its standby copy is called (`read replica`, `Cloud SQL replica`).
    pub replica: &'static str,
    /// The state a copy serves in (`available`, `RUNNABLE`).
    pub ready: &'static str,
    /// The provider's metric of the lag that is the RPO (`ReplicaLag`).
    pub metric: &'static str,
    /// The call that promotes (`rds:PromoteReadReplica`), as previews and
    /// fences name it.
    pub promote_call: &'static str,
    /// The call that switches a DR replica over in a planned move (`None`:
    /// the kind's copies are never DR replicas).
    pub switchover_call: Option<&'static str>,
    /// What to do when the copy does not exist.
    pub missing_hint: &'static str,
    /// How to make a copy the provider's designated DR replica, with
    /// `{primary}`, `{replica}` (the copy's own name) and `{project}` (its
    /// address's project, when it has one) for the names.
    pub designate: &'static str,
    /// How to read a failed operation of the kind, with `{operation}` and
    /// `{project}` for the names (a kind whose moves answer none is never
    /// asked).
    pub inspect_operation: &'static str,
    /// The call that detaches the copy from its group, when a refused
    /// failover falls back to one ([`Promoting::fallback`]).
    pub detach_call: Option<&'static str>,
    /// What people must know after a move, by the move it was, with
    /// `{instance}`, `{region}` and `{source}` (what the copy followed)
    /// for the names: a Cloud SQL plain promotion leaves the old primary
    /// writable; an Aurora failover leaves a snapshot, a detach a global
    /// cluster to rebuild.
    pub warnings: &'static [(MovePath, &'static str)],
    /// The calls a promotion makes once.
    pub calls: &'static [&'static str],
    /// The model's slow operations a promotion waits through.
    pub waits: &'static [&'static str],
    /// The call its wait polls.
    pub polls: &'static str,
}

/// How the target became the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MovePath {
    /// Promoted: a standalone primary.
    Promote,
    /// Failed over to a designated standby, which took over its primary's
    /// role with what it had (a Cloud SQL DR replica; an Aurora global
    /// database's secondary, data loss allowed).
    #[serde(alias = "failover")]
    DrFailover,
    /// Switched over: the roles swapped, nothing lost.
    Switchover,
    /// Detached from its group, writing on its own (a refused failover's
    /// fallback); the group must be rebuilt.
    Detach,
    /// Nothing to do: it is a primary already.
    Already,
}

/// A copy a promotion acts on, as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Primary, or a replica of what.
    pub role: DbRole,
    /// Its state in the provider's words.
    pub state: String,
    /// Whether it serves (the state [`PromoteAbout::ready`] names).
    pub ready: bool,
    /// Whether the provider names it its primary's DR replica.
    pub dr_designated: bool,
    /// Why the kind cannot move it now, and the fix (its group could not
    /// be read, or moves its primary elsewhere): the step refuses.
    #[serde(default)]
    pub blocked: Option<(String, String)>,
    /// Why a planned switchover cannot be made now, and the fix (the API
    /// that switches over does not answer).
    #[serde(default)]
    pub switch_blocked: Option<(String, String)>,
    /// A primary because it was detached from its group before.
    #[serde(default)]
    pub detached: bool,
    /// The endpoint a record that follows the data names, when it has one.
    pub endpoint: Option<String>,
    /// Its port, when the provider says it.
    pub port: Option<i32>,
    /// What the kind keeps of its read for its own call (an RDS instance
    /// as read, whose ARN tags the promotion): the kind's alone, opaque to
    /// the step.
    #[serde(default)]
    pub kept: Value,
}

/// A provider's operation on a copy (a Cloud SQL promotion's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its name, what a later read takes.
    pub name: String,
    /// What it does, in the provider's words (`PROMOTE_REPLICA`).
    pub kind: String,
    /// The move it is (`None`: no move of a promotion's, such as a backup
    /// or maintenance, which the provider runs before it takes another).
    pub path: Option<MovePath>,
    /// When it was asked for.
    pub inserted: Option<DateTime<Utc>>,
    /// Whether it is over.
    pub done: bool,
    /// Why it failed, when it is over and failed.
    pub error: Option<String>,
}

/// What a promotion's call answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// An operation to follow ([`Promoting::operation`]).
    Operation(String),
    /// The copy as the answer showed it (the caller waits for it to be a
    /// serving primary unless it is one).
    Answered(Candidate),
    /// Asked: the copy's read says when it is done (the caller waits for
    /// it to be a serving primary).
    Pending,
}

/// One promotion's facts the decision needs besides what was read.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    /// The kind's words and calls.
    pub about: &'a PromoteAbout,
    /// The copy's address.
    pub address: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The plan names it its primary's DR replica.
    pub dr_replica: bool,
    /// A planned move (a failback, a switchover drill, `--planned`).
    pub planned: bool,
}

/// What the step does, and why ([`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing: the target is a primary already.
    Done {
        /// How it came to be ([`MovePath::Already`], or
        /// [`MovePath::Detach`] for one detached before).
        path: MovePath,
        /// Why.
        why: String,
    },
    /// A move of ours is under way on the target: wait on it.
    Wait {
        /// Its operation.
        operation: Operation,
        /// Why.
        why: String,
    },
    /// Another operation is under way on the target, and the provider
    /// takes no move before it ends: wait for it, then read again.
    WaitOther {
        /// Its operation.
        operation: Operation,
        /// Why.
        why: String,
    },
    /// The target is a replica that does not serve yet: wait for it.
    WaitReady {
        /// Why.
        why: String,
    },
    /// Make the call.
    Act {
        /// Which move.
        path: MovePath,
        /// Why.
        why: String,
    },
    /// Refuse: the world is not in a state the step can work from.
    Refuse {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// Decides what to do from the facts read: the target and a move of ours
/// under way on it. Pure.
pub fn decide(m: &Move<'_>, target: Option<&Candidate>, under_way: Option<&Operation>) -> Decision {
    let (name, r, about) = (m.address, m.region, m.about);
    let Some(target) = target else {
        return Decision::Refuse {
            message: format!("{} {name} does not exist in {r}", about.noun),
            hint: about.missing_hint.into(),
        };
    };
    if let Some((message, hint)) = &target.blocked {
        return Decision::Refuse {
            message: message.clone(),
            hint: hint.clone(),
        };
    }
    if let Some(op) = under_way.filter(|o| !o.done) {
        let (operation, kind) = (op.clone(), &op.kind);
        // A planned run promised a switchover (its RPO gate passed it
        // unread): a lossier move under way, not made by such a run, is
        // not waited on as if it were this run's.
        let lossy = op.path.is_some_and(|p| p != MovePath::Switchover);
        if lossy && switches_over(about, m.dr_replica, m.planned) {
            return Decision::Refuse {
                message: format!(
                    "operation {} ({kind}) is under way on {name}, a move that may lose data, and this planned run only switches over (nothing lost)",
                    op.name
                ),
                hint: "let it end, then run the failover without --planned: its RPO gate judges the lag".into(),
            };
        }
        return match op.path {
            Some(_) => Decision::Wait {
                operation,
                why: format!(
                    "operation {} ({kind}) is already under way on {name}: waiting on it, not calling again",
                    op.name
                ),
            },
            None => Decision::WaitOther {
                operation,
                why: format!(
                    "operation {} ({kind}) is under way on {name}, and the provider takes one operation on an instance at a time: waiting for it to end before the move",
                    op.name
                ),
            },
        };
    }
    let DbRole::Replica(primary) = &target.role else {
        return match target.detached {
            true => Decision::Done {
                path: MovePath::Detach,
                why: format!("{name} in {r} is standalone (detached before); not moving again"),
            },
            false => Decision::Done {
                path: MovePath::Already,
                why: format!("{name} in {r} is a primary already; not promoting again"),
            },
        };
    };
    if !target.ready {
        return Decision::WaitReady {
            why: format!("replica {name} is {}, not {}", target.state, about.ready),
        };
    }
    // What it follows, when the kind could say (else its primary).
    let primary = Some(primary.as_str()).filter(|p| !p.is_empty());
    act_on(m, target, primary.unwrap_or("its primary"))
}

/// The move on a serving replica of `primary` (pure): refused when the plan
/// and the provider disagree on its being a DR replica, or when a planned
/// switchover cannot be made now; else the run's move.
fn act_on(m: &Move<'_>, target: &Candidate, primary: &str) -> Decision {
    let (name, about) = (m.address, m.about);
    if m.dr_replica && (!target.dr_designated || about.switchover_call.is_none()) {
        let (project, own) = name.rsplit_once('/').unwrap_or(("", name));
        let designate = (about.designate)
            .replace("{primary}", primary)
            .replace("{replica}", own)
            .replace("{project}", project);
        return Decision::Refuse {
            message: format!(
                "the plan names {name} the DR replica of {primary}, but the provider does not (it designates no such DR replica)"
            ),
            hint: format!(
                "designate it ({designate}), or remove `dr_replica` from the plan for a plain promotion"
            ),
        };
    }
    if let (true, true, Some((message, hint))) = (m.dr_replica, m.planned, &target.switch_blocked) {
        return Decision::Refuse {
            message: message.clone(),
            hint: hint.clone(),
        };
    }
    let switch = switches_over(about, m.dr_replica, m.planned);
    let (path, why) = match (m.dr_replica, switch) {
        (true, true) => (
            MovePath::Switchover,
            format!(
                "a planned move: switchover of {primary} to its standby {name} (nothing is lost; {primary} becomes the standby)"
            ),
        ),
        (true, false) => (
            MovePath::DrFailover,
            format!(
                "an unplanned failover: {name}, {primary}'s designated standby, takes over with what it has (data loss within the lag the RPO gate allowed)"
            ),
        ),
        (false, _) => (
            MovePath::Promote,
            format!(
                "promote {} {name} of {primary} to a standalone primary (cannot be undone)",
                about.replica
            ),
        ),
    };
    Decision::Act { path, why }
}

/// Whether a run's move of a copy is a switchover, which loses no data by
/// design (the standby catches up before the roles swap): a planned move
/// of a copy the plan names its primary's DR replica, of a kind that
/// switches over. The one rule both the promote step ([`decide`]) and the
/// RPO gate go by: the gate passes such a move without reading its lag,
/// and the step then switches over or refuses (a switchover that cannot be
/// made now, a copy the provider does not designate); it never falls back
/// to a move that may lose data.
pub fn switches_over(about: &PromoteAbout, dr_replica: bool, planned: bool) -> bool {
    dr_replica && planned && about.switchover_call.is_some()
}

/// The RPO sources of a plan (its copies kept in sync), each with whether
/// a run's move of it switches over ([`switches_over`]; `planned`: a
/// planned run), whose lag then decides nothing: what the RPO gate reads,
/// and what a switchover drill waits on before it fails back.
pub fn rpo_sources(
    spec: &crate::plan::spec::PlanSpec,
    planned: bool,
) -> Vec<(&dyn RpoSource, bool)> {
    super::each(spec)
        .into_iter()
        .filter_map(|r| {
            let source = r.rpo_source()?;
            let switch = (r.kind().promoting())
                .is_some_and(|role| switches_over(role.about(), source.dr_replica(), planned));
            Some((source, switch))
        })
        .collect()
}

/// The data role's promotion actions on one kind's copies, addressed by
/// the region and the address a step records. Each is the kind's to
/// answer: none has a default.
#[async_trait]
pub trait Promoting: Sync {
    /// What the kind's promotions are, in words and calls.
    fn about(&self) -> &'static PromoteAbout;
    /// Reads the copy at `address` (`Ok(None)`: it does not exist).
    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Candidate>, CloudError>;
    /// A move of ours (a promotion, a switchover) still under way on the
    /// copy, when the kind's calls answer operations; `None` otherwise.
    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Operation>, CloudError>;
    /// The copy's replication lag over the last `window` (the RPO).
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError>;
    /// The move the kind makes instead when `path` was refused as
    /// `refused` says (Aurora detaches a secondary whose managed failover
    /// is refused; `None`: the refusal fails the step).
    fn fallback(&self, path: MovePath, refused: &CloudError) -> Option<MovePath>;
    /// The move a refusal of `path` may make it fall back to, whatever the
    /// refusal ([`Promoting::fallback`] judges the refusal): what a preview
    /// people approve names beside the move itself.
    fn may_fall_back(&self, path: MovePath) -> Option<MovePath>;
    /// Makes the move `path` on the copy as `known` read it.
    async fn start(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        path: MovePath,
        known: &Candidate,
    ) -> Result<Started, CloudError>;
    /// Where operation `op` on the copy stands (never asked of a kind
    /// whose moves answer no operation: [`Started::Answered`]).
    async fn operation(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        op: &str,
    ) -> Result<Operation, CloudError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABOUT: PromoteAbout = PromoteAbout {
        noun: "Cloud SQL instance",
        replica: "Cloud SQL replica",
        ready: "RUNNABLE",
        metric: "replica_lag",
        promote_call: "sqladmin:instances.promoteReplica",
        switchover_call: Some("sqladmin:instances.switchover"),
        missing_hint: "fix the name",
        designate: "patch {primary} --failover-dr-replica-name={replica} --project {project}",
        inspect_operation: "describe {operation} --project {project}",
        detach_call: None,
        warnings: &[],
        calls: &[],
        waits: &[],
        polls: "sqladmin:operations.get",
    };

    const NO_DR: PromoteAbout = PromoteAbout {
        switchover_call: None,
        ..ABOUT
    };

    fn step(about: &PromoteAbout, dr: bool, planned: bool) -> Move<'_> {
        Move {
            about,
            address: "p/orders-use4",
            region: "us-east4",
            dr_replica: dr,
            planned,
        }
    }

    fn replica(dr: bool, state: &str) -> Candidate {
        Candidate {
            role: DbRole::Replica("orders".into()),
            state: state.into(),
            ready: state == "RUNNABLE",
            dr_designated: dr,
            blocked: None,
            switch_blocked: None,
            detached: false,
            endpoint: None,
            port: None,
            kept: Value::Null,
        }
    }

    fn path(d: Decision) -> Option<MovePath> {
        match d {
            Decision::Act { path, .. } => Some(path),
            _ => None,
        }
    }

    #[test]
    fn the_path_follows_the_copy_and_the_run() {
        let ok = replica(true, "RUNNABLE");
        let of = |dr, planned| path(decide(&step(&ABOUT, dr, planned), Some(&ok), None));
        assert_eq!(of(false, false), Some(MovePath::Promote));
        assert_eq!(of(false, true), Some(MovePath::Promote));
        assert_eq!(of(true, false), Some(MovePath::DrFailover));
        assert_eq!(of(true, true), Some(MovePath::Switchover));
    }

    /// A planned run switches over or refuses (its RPO gate passed it
    /// unread): a lossier move of another's under way on its copy is
    /// refused, not waited on and journaled as this run's.
    #[test]
    fn a_planned_run_refuses_a_lossy_move_under_way_and_waits_on_a_switchover() {
        let ready = replica(true, "RUNNABLE");
        let op = |path| Operation {
            name: "op-9".into(),
            kind: "PROMOTE_REPLICA".into(),
            path: Some(path),
            inserted: None,
            done: false,
            error: None,
        };
        for path in [MovePath::DrFailover, MovePath::Promote, MovePath::Detach] {
            let d = decide(&step(&ABOUT, true, true), Some(&ready), Some(&op(path)));
            assert!(
                matches!(&d, Decision::Refuse { message, .. } if message.contains("may lose data")),
                "{path:?}: {d:?}"
            );
            let d = decide(&step(&ABOUT, true, false), Some(&ready), Some(&op(path)));
            assert!(
                matches!(d, Decision::Wait { .. }),
                "unplanned {path:?}: {d:?}"
            );
        }
        let d = decide(
            &step(&ABOUT, true, true),
            Some(&ready),
            Some(&op(MovePath::Switchover)),
        );
        assert!(matches!(d, Decision::Wait { .. }), "{d:?}");
    }

    #[test]
    fn a_primary_is_done_a_move_under_way_is_waited_on_and_a_busy_replica_waited_for() {
        let primary = Candidate {
            role: DbRole::Primary,
            ..replica(false, "RUNNABLE")
        };
        let d = decide(&step(&ABOUT, false, false), Some(&primary), None);
        assert!(matches!(d, Decision::Done { .. }), "{d:?}");
        let op = Operation {
            name: "op-1".into(),
            kind: "PROMOTE_REPLICA".into(),
            path: Some(MovePath::Promote),
            inserted: None,
            done: false,
            error: None,
        };
        let d = decide(&step(&ABOUT, false, false), Some(&primary), Some(&op));
        assert!(
            matches!(&d, Decision::Wait { operation, .. } if operation.name == "op-1"),
            "{d:?}"
        );
        let over = Operation { done: true, ..op };
        let d = decide(&step(&ABOUT, false, false), Some(&primary), Some(&over));
        assert!(matches!(d, Decision::Done { .. }), "{d:?}");
        let backup = Operation {
            kind: "BACKUP_VOLUME".into(),
            path: None,
            ..over.clone()
        };
        let ready = replica(false, "RUNNABLE");
        let running = Operation {
            done: false,
            ..backup
        };
        let d = decide(&step(&ABOUT, false, false), Some(&ready), Some(&running));
        assert!(
            matches!(&d, Decision::WaitOther { why, .. } if why.contains("one operation on an instance at a time")),
            "{d:?}"
        );
        let busy = replica(false, "MAINTENANCE");
        let d = decide(&step(&ABOUT, false, false), Some(&busy), None);
        assert_eq!(
            d,
            Decision::WaitReady {
                why: "replica p/orders-use4 is MAINTENANCE, not RUNNABLE".into()
            }
        );
    }

    #[test]
    fn a_missing_copy_or_an_undesignated_dr_replica_is_refused_with_the_kinds_hint() {
        let d = decide(&step(&ABOUT, false, false), None, None);
        assert_eq!(
            d,
            Decision::Refuse {
                message: "Cloud SQL instance p/orders-use4 does not exist in us-east4".into(),
                hint: "fix the name".into()
            }
        );
        let plain = replica(false, "RUNNABLE");
        let Decision::Refuse { message, hint } =
            decide(&step(&ABOUT, true, false), Some(&plain), None)
        else {
            panic!("refused");
        };
        assert!(message.contains("DR replica of orders"), "{message}");
        assert_eq!(
            hint,
            "designate it (patch orders --failover-dr-replica-name=orders-use4 --project p), or remove `dr_replica` from the plan for a plain promotion"
        );
        // A kind that cannot switch over has no DR replica to act as one.
        let designated = replica(true, "RUNNABLE");
        let d = decide(&step(&NO_DR, true, true), Some(&designated), None);
        assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
    }
}
