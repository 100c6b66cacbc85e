//! Whether a plan is still what its last passing drill proved: the rule
//! (`judge`), the plan's own facts (`definition`), how two inventories
//! differ, and the bands of staleness and lag. Pure, and below every
//! reader: `drctl status` judges the plan and the world it reads now
//! (`status::verified`); the report, made from journals only, judges the
//! plan's definition and the drill's age, and says the world is `status`'s
//! to compare.
//!
//! Staleness is banded: within the interval, over 1×, over 2×, over 4×
//! (how far a control is out, not only whether it is); the lag of the
//! standby copies is banded the same way against the tier's RPO (unknown
//! stays unknown).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::plan::Plan;
use crate::runs::schedule::Cadence;

/// A plan's inventory: named facts, each with its value.
pub type Inventory = BTreeMap<String, String>;

/// The prefix of the facts that come from the plan's definition.
pub const PLAN: &str = "plan ";

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
    /// Where the drill failed over to, and how deep it went (`shadow`,
    /// `switchover`): what it proved, and so what `verified` claims. A
    /// failover elsewhere is judged by [`Verified::for_target`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proved: Option<Proved>,
}

/// What a drill proved: a failover to `target`, at `depth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proved {
    /// The region it failed over to.
    pub target: String,
    /// How deep (`shadow`, `switchover`; empty: not said).
    pub depth: String,
    /// Whether the drill's journal was read against listed run keys
    /// (`false`: none is listed, and anyone who can write the state could
    /// have written it: "verified" is then unauthenticated, and said so).
    pub authenticated: bool,
}

impl Verified {
    /// This state, for a failover to `target`: a drill to another standby
    /// proved nothing of this one (a three-region plan drilled to B is not
    /// verified for a failover to C).
    pub fn for_target(mut self, target: &str) -> Self {
        let Some(p) = &self.proved else {
            return self;
        };
        if !p.target.is_empty() && p.target != target && self.verified {
            self.verified = false;
            self.reason = Some(format!(
                "the last passing drill, {}, failed over to {}, not to {target}: nothing proves a failover to {target}",
                self.drill.as_deref().unwrap_or("?"),
                p.target
            ));
        }
        self
    }
}

/// The digest of `value`: SHA-256, whole (pure). Drills journaled
/// 64-bit digests before; those are no proof of an entry now
/// ([`differences`]).
fn digest(value: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// Whether a fact's value says it could not be read (a region that did not
/// answer, a read that failed): such a fact proves nothing, at the drill or
/// now.
fn unread(value: &str) -> bool {
    matches!(value, "unreadable" | "does not answer")
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

/// Each difference of `now` from `then`, in words (pure): an edited,
/// new or removed entry of the plan; a fact that changed, appeared or is
/// gone.
pub fn differences(then: &Inventory, now: &Inventory) -> Vec<String> {
    let mut out = Vec::new();
    for (key, was) in then {
        let entry = key.strip_prefix(PLAN);
        match (now.get(key), entry) {
            // Unread at the drill or now: nothing says it is as it was.
            (Some(is), None) if unread(was) || unread(is) => out.push(format!(
                "{key} {}: was {was}, now {is}",
                if unread(was) {
                    "was not read at the drill"
                } else {
                    "cannot be read now"
                }
            )),
            // A 64-bit digest journaled by an older drill proves nothing
            // against the full one.
            (Some(is), Some(e)) if e != "tier" && was.len() != is.len() => out.push(format!(
                "plan `{e}` was journaled with a short digest by the drill: drill again to compare"
            )),
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

/// What the current inventory of a judgement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The plan and the world as read now (`drctl status`).
    World,
    /// The plan's definition alone (a report from journals): only the
    /// drill's `plan ...` facts are compared.
    Definition,
}

/// Whether `plan` is what its last passing drill proved (`cadence`), from
/// journals and the plan alone: its definition and the drill's age, no
/// cloud read (the report, `/metrics`, `schedule list`; `drctl status`
/// compares the world too).
pub fn by_definition(plan: &Plan, cadence: &Cadence, now: DateTime<Utc>) -> Verified {
    let own = definition(plan);
    judge(plan, (&own, Scope::Definition), Some(cadence), None, now)
}

/// Judges `plan` at `now` (pure): `current` is its inventory now (of
/// `scope`), `cadence` gives the last passing drill and the inventory it
/// journaled, `lag` the standby lag's band when read.
pub fn judge(
    plan: &Plan,
    (current, scope): (&Inventory, Scope),
    cadence: Option<&Cadence>,
    lag: Option<Band>,
    now: DateTime<Utc>,
) -> Verified {
    let Some(drill) = cadence.and_then(|c| c.last_passing.as_ref()) else {
        return Verified {
            verified: false,
            drill: None,
            drilled_at: None,
            staleness: None,
            lag,
            differences: Vec::new(),
            reason: Some("no passing drill on record".into()),
            proved: None,
        };
    };
    let interval = plan.tier.drill_interval.as_secs_f64();
    let age = (now - drill.started).to_std().unwrap_or(Duration::ZERO);
    let staleness = Band::of(age.as_secs_f64(), interval);
    let differences = match (&drill.inventory, scope) {
        (Some(then), Scope::World) => differences(then, current),
        (Some(then), Scope::Definition) => {
            let own: Inventory = (then.iter())
                .filter(|(k, _)| k.starts_with(PLAN))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            differences(&own, current)
        }
        (None, _) => Vec::new(),
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
        proved: Some(Proved {
            target: drill.target.clone(),
            depth: drill.depth.clone(),
            authenticated: drill.authenticated,
        }),
    }
}
