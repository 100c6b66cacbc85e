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
//! records' targets, the evidence destinations, a digest of each of the
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
//! Staleness is banded: within the interval, over 1×, over 2×, over 4×
//! (how far a control is out, not only whether it is); the lag of the
//! standby copies is banded the same way against the tier's RPO (unknown
//! stays unknown).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{PlanStatus, StatusOptions};
use crate::cloud::Clouds;
use crate::plan::Plan;
use crate::runs::schedule::Cadence;

/// A plan's inventory: named facts, each with its value.
pub type Inventory = BTreeMap<String, String>;

/// The prefix of the facts that come from the plan's definition.
const PLAN: &str = "plan ";

/// How far past a bound a figure is (a drill's age against the tier's
/// interval, a lag against the RPO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Within the bound.
    Within,
    /// Over it, at most twice it.
    Over1x,
    /// Over twice it, at most four times.
    Over2x,
    /// Over four times it.
    Over4x,
}

impl Band {
    /// The band of `value` against `bound` (pure; a zero bound: anything
    /// above zero is over 4×).
    pub fn of(value: f64, bound: f64) -> Self {
        if value <= bound {
            Self::Within
        } else if value <= 2.0 * bound {
            Self::Over1x
        } else if value <= 4.0 * bound {
            Self::Over2x
        } else {
            Self::Over4x
        }
    }

    /// How people read it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Within => "within",
            Self::Over1x => "over 1x",
            Self::Over2x => "over 2x",
            Self::Over4x => "over 4x",
        }
    }
}

/// A plan's verified state now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    /// Verified: the last passing drill matches the plan and the world,
    /// within the tier's interval.
    pub verified: bool,
    /// The last passing drill, if any.
    pub drill: Option<String>,
    /// When it started.
    pub drilled_at: Option<DateTime<Utc>>,
    /// Its age against the tier's interval (`None`: never drilled).
    pub staleness: Option<Band>,
    /// The worst lag of a standby copy against the tier's RPO (`None`:
    /// unknown, or the plan holds no copy with a lag).
    pub lag: Option<Band>,
    /// What differs from the drill's inventory (empty when it matches).
    pub differences: Vec<String>,
    /// Why it is not verified, in one line (`None` when it is).
    pub reason: Option<String>,
}

/// A short digest of `value` (pure).
fn digest(value: &serde_json::Value) -> String {
    let h = Sha256::digest(value.to_string().as_bytes());
    hex::encode(&h[..8])
}

/// The facts of the plan's definition: one digest per entry of each table
/// (`plan [[cloud_run]] orders-run`), one for everything else (`plan
/// settings`) and the tier's objectives (pure). No kind is named here: a
/// table is any list of entries with an `id`.
pub fn definition(plan: &Plan) -> Inventory {
    let mut out = Inventory::new();
    let Ok(serde_json::Value::Object(spec)) = serde_json::to_value(&plan.spec) else {
        return out;
    };
    let mut settings = serde_json::Map::new();
    for (table, value) in spec {
        let entries: Vec<(&str, &serde_json::Value)> = match &value {
            serde_json::Value::Array(items) => (items.iter())
                .filter_map(|e| Some((e.get("id")?.as_str()?, e)))
                .collect(),
            _ => Vec::new(),
        };
        if entries.is_empty() {
            settings.insert(table, value);
            continue;
        }
        for (id, entry) in entries {
            out.insert(format!("{PLAN}[[{table}]] {id}"), digest(entry));
        }
    }
    out.insert(
        format!("{PLAN}settings"),
        digest(&serde_json::Value::Object(settings)),
    );
    out.insert(
        format!("{PLAN}tier"),
        format!(
            "{} (RTO {}s, RPO {}s, drill every {}s)",
            plan.tier.name,
            plan.tier.rto.as_secs(),
            plan.tier.rpo.as_secs(),
            plan.tier.drill_interval.as_secs()
        ),
    );
    out
}

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
            let role = match &d.source {
                Some(src) => format!("{} {} of {src}", d.instance, d.role),
                None => format!("{} {}", d.instance, d.role),
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

/// Each difference of `now` from `then`, in words (pure): an edited,
/// new or removed entry of the plan; a fact that changed, appeared or is
/// gone.
pub fn differences(then: &Inventory, now: &Inventory) -> Vec<String> {
    let mut out = Vec::new();
    for (key, was) in then {
        let entry = key.strip_prefix(PLAN);
        match (now.get(key), entry) {
            (Some(is), _) if is == was => {}
            (Some(_), Some("tier")) => out.push(format!(
                "plan changed: its tier was {was}, now {}",
                now[key]
            )),
            (Some(_), Some(e)) => out.push(format!("plan changed: `{e}` edited")),
            (Some(is), None) => out.push(format!("{key} was {was}, now {is}")),
            (None, Some(e)) => out.push(format!("plan changed: `{e}` removed")),
            (None, None) => out.push(format!("{key} is gone (was {was})")),
        }
    }
    for (key, is) in now.iter().filter(|(k, _)| !then.contains_key(*k)) {
        match key.strip_prefix(PLAN) {
            Some(e) => out.push(format!("plan changed: a new `{e}`")),
            None => out.push(format!("{key} is new: {is}")),
        }
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

/// Judges `plan` now (pure): its status read now, its cadence (the last
/// passing drill and the inventory that drill journaled), the time.
pub fn judge(
    plan: &Plan,
    status: &PlanStatus,
    cadence: Option<&Cadence>,
    now: DateTime<Utc>,
) -> Verified {
    let lag = lag_band(plan, status);
    let last = cadence.and_then(|c| c.last_passing.as_ref());
    let Some(drill) = last else {
        return Verified {
            verified: false,
            drill: None,
            drilled_at: None,
            staleness: None,
            lag,
            differences: Vec::new(),
            reason: Some("no passing drill on record".into()),
        };
    };
    let interval = plan.tier.drill_interval.as_secs_f64();
    let age = (now - drill.started).to_std().unwrap_or(Duration::ZERO);
    let staleness = Band::of(age.as_secs_f64(), interval);
    let differences = match &drill.inventory {
        Some(then) => differences(then, &inventory(plan, status)),
        None => Vec::new(),
    };
    let reason = if drill.inventory.is_none() {
        Some(format!(
            "the last passing drill, {}, journaled no inventory to compare",
            drill.run_id
        ))
    } else if !differences.is_empty() {
        Some(format!(
            "changed since the last passing drill, {}: {}",
            drill.run_id,
            differences.join("; ")
        ))
    } else if staleness != Band::Within {
        Some(format!(
            "the last passing drill, {}, is {} the {} tier's interval of {}",
            drill.run_id,
            staleness.words(),
            plan.tier.name,
            crate::plan::duration::format_duration(plan.tier.drill_interval)
        ))
    } else {
        None
    };
    Verified {
        verified: reason.is_none(),
        drill: Some(drill.run_id.clone()),
        drilled_at: Some(drill.started),
        staleness: Some(staleness),
        lag,
        differences,
        reason,
    }
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
