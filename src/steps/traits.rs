//! What a step kind is, said once as data (`TRAITS`): on the recovery's
//! path or beside it, whether it ends the RTO clock, whether it can be
//! undone, where its outputs name an endpoint and the RPO, and what it
//! costs in the model's terms.
//!
//! Why data and not methods: the graph, measurement, `plan show`, the
//! forecast and the reports read a kind's traits from its name alone (a
//! journal's step, a retired kind's too), with no step to ask.

use serde_json::Value;

/// How the RPO achieved is read from a step's journaled outputs (kinds that
/// promote or restore a database): `(seconds, basis)` given the resource,
/// the outputs (`None` when the step never succeeded), the lag the RPO gate
/// journaled for the resource, and the RTO origin with its label.
pub type RpoReader = fn(
    resource: &str,
    outputs: Option<&Value>,
    gate_lag: Option<f64>,
    origin: chrono::DateTime<chrono::Utc>,
    origin_label: &str,
) -> (Option<f64>, String);

/// How a kind's journaled outputs name the endpoint of the resource its
/// step acts on (`None`: they do not, or the step has not got one yet).
pub type EndpointReader = fn(outputs: &Value) -> Option<String>;

/// What a kind is, for measurement and display.
#[derive(Clone, Copy)]
pub struct Traits {
    /// Part of the recovery: without a DNS step, the RTO clock stops at the
    /// last such step (evidence and bookkeeping do not count).
    pub recovery: bool,
    /// Stops the RTO clock when it ends (DNS in effect and read back):
    /// what its end is, in the words an RTO's basis says it
    /// ([`RESOLVED`], [`INSYNC`]); `None`: it ends no clock.
    pub rto_end: Option<&'static str>,
    /// Only waits for the traffic switch to take effect (records read
    /// back, names resolved): where a watched run's `converge` phase
    /// begins (`runs::watch::verify_started`).
    pub converges: bool,
    /// Cannot be undone (promotion): the rollback scope; why, and how to
    /// go back, in a sentence (`plan show` says it under the step).
    pub irreversible: Option<&'static str>,
    /// Where its journaled outputs name the endpoint of the resource it
    /// acts on (its subject) in the target: what a DNS record that
    /// `follows` the resource points at after this step.
    pub endpoint: Option<EndpointReader>,
    /// Where the RPO achieved is read, for kinds that measure it.
    pub rpo: Option<RpoReader>,
    /// What its journaled outputs say people must know (a detached
    /// global database to rebuild, a snapshot that expires): the run's
    /// report and its notifications carry them.
    pub warnings: Option<fn(&Value) -> Vec<String>>,
    /// What it costs in time and API calls, in the model's terms (the
    /// forecast of `drctl plan budget` reads it).
    pub time: Cost,
    /// Where its journaled outputs say its RTO end is short of what
    /// [`Traits::rto_end`] says (a change in effect that could not be
    /// seen): the words an RTO's basis adds.
    pub rto_caveat: Option<fn(&Value) -> Option<&'static str>>,
    /// Where its journaled outputs say it restored data from backups: a
    /// drill that did is a restore test, which the report shows.
    pub restored: Option<fn(&Value) -> Option<Restored>>,
}

/// What a step restored data from, as its outputs journal it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    /// What, in words (`copied snapshot archive-db-nightly`).
    pub from: String,
    /// The point restored to, when known.
    pub point: Option<chrono::DateTime<chrono::Utc>>,
}

/// The end of an RTO clock a resolution check stops: the names answered
/// the target at the DNS servers asked, N times in a row.
pub const RESOLVED: &str =
    "the names resolved to the target at the zone's DNS servers (the first of consecutive answers)";

/// The end of an RTO clock a Route 53 change stops: INSYNC, and the
/// records read back (a drill's records).
pub const INSYNC: &str = "the last DNS change INSYNC and read back";

/// The end of a drill's RTO clock its drill records stop, whatever the
/// zone's kind.
pub const DRILL_IN_EFFECT: &str = "the DNS change of the drill records in effect (Route 53 INSYNC or Cloud DNS done) and read back";

/// The end of an RTO clock a records-mode switch stops, whatever the
/// zone's kind: its change in effect (Route 53's INSYNC, Cloud DNS's
/// `done`), and the records read back.
pub const IN_EFFECT: &str =
    "the last DNS change in effect (Route 53 INSYNC or Cloud DNS done) and read back";

/// What an RTO's basis adds to [`IN_EFFECT`] when the switch's own change
/// had no id to wait on (sent by an earlier attempt, or its answer lost)
/// and its provider cannot list a zone's changes (Route 53).
pub const UNCONFIRMED: &str = "not seen in effect: the switch's change, sent by an earlier attempt or its answer lost, has no id Route 53 can be asked about, so the clock stopped at the read-back, a lower bound (Route 53 propagates a change within about 60 s), and whether the target was met is unknown unless it was missed";

impl Traits {
    /// Whether it stops the RTO clock ([`Traits::rto_end`]).
    pub fn ends_rto(&self) -> bool {
        self.rto_end.is_some()
    }

    /// A step on the recovery's path that can be undone, ends no clock,
    /// names no endpoint, reads no RPO, warns of nothing, costs nothing:
    /// what a step kind's `TRAITS` says otherwise, it says over this
    /// (`Traits { rto_end: Some(INSYNC), time: .., ..Traits::RECOVERY }`).
    pub const RECOVERY: Traits = Traits {
        warnings: None,
        recovery: true,
        rto_end: None,
        converges: false,
        irreversible: None,
        endpoint: None,
        rpo: None,
        time: Cost::NONE,
        rto_caveat: None,
        restored: None,
    };

    /// The same, off the recovery's path (evidence, bookkeeping).
    pub const OFF_PATH: Traits = Traits {
        recovery: false,
        ..Traits::RECOVERY
    };
}

/// What a step costs in time and API calls, named as the model of AWS
/// names them (`src/cloud/aws_model.toml`): the forecast of a failover's
/// RTO ([`crate::forecast`]) adds these up along the graph.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// The API calls it makes once (`service:Operation`).
    pub calls: &'static [&'static str],
    /// The model's slow operations it waits through, one after another.
    pub waits: &'static [&'static str],
    /// The call it repeats while it waits, at the run's poll interval.
    pub polls: Option<&'static str>,
}

impl Cost {
    /// A role's cost: the calls it makes once, the waits they make, the
    /// read those waits poll (what every generic step's kind says).
    pub const fn of_role(
        calls: &'static [&'static str],
        waits: &'static [&'static str],
        polls: &'static str,
    ) -> Self {
        Self {
            calls,
            waits,
            polls: Some(polls),
        }
    }

    /// No call, no wait, no poll: what a cost says otherwise, it says over
    /// this (`Cost { calls: &[..], ..Cost::NONE }`).
    pub const NONE: Cost = Cost {
        calls: &[],
        waits: &[],
        polls: None,
    };
}
