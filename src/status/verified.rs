//! Verified readiness: a plan is **verified** while its definition and its
//! discovered inventory match those of its last passing drill, and that
//! drill is within its tier's interval; otherwise it is **not verified**,
//! with each difference named ("payments-api max in us-east-1 was 8, now
//! 4"; "plan changed: a new `[[cloud_run]] orders-run`").
//!
//! # Why an inventory, and why from `status`
//!
//! A drill proves a recovery of the world it ran against. A standby whose
//! maximum was lowered since, a replica that is no longer one, a record
//! that points elsewhere, a new resource in the plan: each makes the proof
//! stale while the drill's date still looks fresh. So a drill journals,
//! before its steps act, the plan's **inventory**: one flat map of named
//! facts (a resource's ids and regions, its capacity maximum and floor, the
//! data copies and their designation, the lag metric's presence, the
//! records' targets, what each data-plane control says (serve, drain or
//! missing), the evidence destinations, a digest of each of the
//! plan's entries). `status` reads the same inventory now and compares.
//!
//! The inventory is built from a [`PlanStatus`], the one kind-neutral
//! reading of a plan (every kind answers it through its role), so a new
//! kind is inventoried without a line here; the plan's entries are read
//! from its serialized form, table by table, for the same reason.
//!
//! Reading and judging are apart: [`inventory`] and [`judge`] are pure;
//! [`StatusInventory`] reads the world for the engine (which sits below
//! `status` and asks through [`crate::engine::InventoryReader`]).
//!
//! The rule, the bands and the plan's own facts are the read model's
//! (`runs::verified`), shared with the report, which judges from journals
//! alone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PlanStatus, StatusOptions};
use crate::cloud::Clouds;
use crate::plan::Plan;
use crate::runs::schedule::Cadence;
pub use crate::runs::verified::{Band, Inventory, Verified, definition, differences};
use crate::runs::verified::{Scope, judge as rule};
use crate::steps::placement::ControlSaid;

/// The plan's inventory as `status` read it (pure): its definition
/// ([`definition`]) and, per region, what answered. A read that failed
/// is a value of its own (`unreadable`), never the value of a missing
/// resource.
pub fn inventory(plan: &Plan, status: &PlanStatus) -> Inventory {
    let mut out = definition(plan);
    for r in &status.regions {
        let at = &r.region;
        let answers = match &r.unreachable {
            None => "answers".to_string(),
            Some(_) => "does not answer".to_string(),
        };
        out.insert(format!("region {at}"), answers);
        for d in &r.databases {
            let role = match (&d.source, d.role.as_str()) {
                // A copy whose read failed proves nothing, at the drill or
                // now: its own value, never a role.
                (_, "unreachable" | "unknown") => "unreadable".to_string(),
                (Some(src), _) => format!("{} {} of {src}", d.instance, d.role),
                (None, _) => format!("{} {}", d.instance, d.role),
            };
            out.insert(format!("{} copy in {at}", d.id), role);
            if d.role == "replica" {
                let metric = if d.lag_datapoints > 0 {
                    "present"
                } else {
                    "absent"
                };
                out.insert(format!("{} lag metric in {at}", d.id), metric.into());
            }
        }
        for c in &r.compute {
            let (max, floor) = match (&c.capacity, c.exists) {
                (Some(cap), _) => (cap.max.to_string(), cap.min.to_string()),
                (None, false) if r.unreachable.is_none() => ("missing".into(), "missing".into()),
                (None, _) => ("unreadable".into(), "unreadable".into()),
            };
            out.insert(format!("{} group in {at}", c.id), c.group.clone());
            out.insert(format!("{} max in {at}", c.id), max);
            out.insert(format!("{} floor in {at}", c.id), floor);
        }
    }
    for d in &status.dns {
        let mut values = d.values.clone();
        values.sort();
        out.insert(format!("{} record {}", d.id, d.name), values.join(", "));
    }
    // A record whose read failed has no row: it is an entry all the same,
    // unreadable, so that a record unread at the drill and now is a
    // difference, not two absences that match.
    for p in crate::steps::placement::records(plan) {
        let (name, _, _) = p.names();
        (out.entry(format!("{} record {name}", p.id()))).or_insert_with(|| "unreadable".into());
    }
    for c in &status.controls {
        let said = match &c.said {
            ControlSaid::Serve => "serve",
            ControlSaid::Drain => "drain",
            ControlSaid::Missing => "missing",
            ControlSaid::Unknown(_) => "unreadable",
        };
        out.insert(format!("{} control in {}", c.record, c.region), said.into());
    }
    for e in &status.evidence {
        let state = match (e.reachable, &e.error) {
            (Some(true), _) => "exists",
            (Some(false), _) => "missing",
            (None, _) => "unreadable",
        };
        out.insert(format!("evidence {}", e.destination), state.into());
    }
    out
}

/// The worst lag of the plan's standby copies against its RPO (pure;
/// `None` when a replica's lag is unknown or there is none).
pub fn lag_band(plan: &Plan, status: &PlanStatus) -> Option<Band> {
    let rpo = plan.tier.rpo.as_secs_f64();
    let replicas: Vec<Option<f64>> = (status.regions.iter())
        .flat_map(|r| r.databases.iter())
        .filter(|d| d.role == "replica")
        .map(|d| d.lag_seconds)
        .collect();
    if replicas.is_empty() || replicas.iter().any(Option::is_none) {
        return None;
    }
    (replicas.into_iter().flatten())
        .map(|lag| Band::of(lag, rpo))
        .max()
}

/// Judges `plan` now (pure): the plan and the world as `status` read
/// them, its cadence (the last passing drill and the inventory that drill
/// journaled), the time.
pub fn judge(
    plan: &Plan,
    status: &PlanStatus,
    cadence: Option<&Cadence>,
    now: DateTime<Utc>,
) -> Verified {
    let current = inventory(plan, status);
    let lag = lag_band(plan, status);
    rule(plan, (&current, Scope::World), cadence, lag, now)
}

/// Reads each plan's inventory now, as `status` reads it: what a drill
/// journals before its steps act ([`crate::engine::InventoryReader`]).
pub struct StatusInventory {
    /// How the reads are bounded.
    pub opts: StatusOptions,
}

#[async_trait]
impl crate::engine::InventoryReader for StatusInventory {
    async fn inventories(&self, clouds: &Clouds, plans: &[Plan]) -> BTreeMap<String, Inventory> {
        let report = super::status(clouds, plans, &self.opts).await;
        (plans.iter().zip(&report.plans))
            .map(|(plan, st)| (plan.name().to_string(), inventory(plan, st)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
