//! Payloads that journal events carry: what a drill created ([`Temp`]) and
//! what an evidence check found ([`PlanCheck`]).
//!
//! They live here, in the floor, because the journal's vocabulary must not
//! depend on the modules that produce it (drills, evidence): every layer
//! above reads and writes these types, none of them owns them.

use serde::{Deserialize, Serialize};

use super::event::CleanupResult;

/// A resource a drill created or changed, to be removed (or restored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Temp {
    /// A temporary database instance (replica, then promoted).
    Database {
        /// Region.
        region: String,
        /// Instance id.
        id: String,
    },
    /// A compute group raised to its active capacity; restored from its
    /// restore tag (`drctl:drill-restore`).
    Capacity {
        /// Region.
        region: String,
        /// Group name.
        group: String,
    },
    /// A drill DNS record.
    Record {
        /// Hosted zone name.
        zone: String,
        /// Fully qualified record name.
        name: String,
        /// Record type.
        rtype: String,
    },
}

impl std::fmt::Display for Temp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database { region, id } => write!(f, "database {id} ({region})"),
            Self::Capacity { region, group } => write!(f, "capacity of group {group} ({region})"),
            Self::Record { zone, name, rtype } => write!(f, "record {name} {rtype} (zone {zone})"),
        }
    }
}

impl Temp {
    /// Whether removing it only removes what the drill made (never a
    /// resource a real failover may now own): a preempted drill removes
    /// only these.
    pub fn drill_only(&self) -> bool {
        !matches!(self, Self::Capacity { .. })
    }
}

/// One thing wrong with a pack, naming the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The object (or destination) concerned.
    pub object: String,
    /// What is wrong.
    pub problem: String,
}

/// One destination's pack, verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationCheck {
    /// The destination.
    pub destination: String,
    /// Objects whose digest matched (the manifest included).
    pub verified: usize,
    /// What is wrong; empty when the pack is whole.
    pub problems: Vec<Problem>,
}

/// One plan's evidence of one run, verified (also what an
/// [`crate::journal::Event::EvidenceVerified`] record keeps, so reports can name a pack
/// that no longer matches without reading any cloud).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCheck {
    /// The plan.
    pub plan: String,
    /// Per destination.
    pub destinations: Vec<DestinationCheck>,
}

impl PlanCheck {
    /// Whether every destination's pack is whole.
    pub fn ok(&self) -> bool {
        self.destinations.iter().all(|d| d.problems.is_empty())
    }
}

/// The cleanup of one resource, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaned {
    /// The resource.
    pub resource: Temp,
    /// What happened.
    pub result: CleanupResult,
    /// What the proof read found, or why it failed.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_capacity_is_shared_with_a_failover() {
        let db = Temp::Database {
            region: "r".into(),
            id: "i".into(),
        };
        let cap = Temp::Capacity {
            region: "r".into(),
            group: "g".into(),
        };
        assert!(db.drill_only());
        assert!(!cap.drill_only());
        let json = serde_json::to_string(&db).unwrap();
        assert_eq!(json, r#"{"type":"database","region":"r","id":"i"}"#);
    }
}
