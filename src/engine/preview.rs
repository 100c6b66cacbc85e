//! Previews people approve: a dry run names every call each step would
//! make, current → desired, and the gates' decisions; its **hash**
//! identifies what would be done, so a change ticket (or an automated
//! reviewer) approves exactly that, and `--approve-preview HASH` runs only
//! while a fresh preview, made under the run's locks, has the same hash.
//!
//! # What the hash covers, and why not everything
//!
//! The hash covers what the run would *do*: the run's kind and target,
//! each step's calls, resources, regions and desired states, whether each
//! changes anything, each gate's decision and whether approval is required.
//! It leaves out what moves every second without changing what is done
//! (the lag measured, the states read), and whether this command line
//! gives approval (a preview is made before anyone approves it). A world
//! change that changes what a step would do changes the hash.
//!
//! The approval is itself a gate ([`GateName::Preview`]), journaled before
//! the other gates under the plans' locks: the journal says which preview
//! a run ran as approved, or why it refused (what changed, line by line,
//! when the approved preview's lines are given).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::executor::plan_graph;
use super::{Engine, EngineError, Refusal, RunOptions, compile_all};
use crate::journal::event::{Decision, Event, GateName, RunKind};
use crate::journal::{Journal, RpoDetail};
use crate::plan::{Approval, Plan};
use crate::steps::Planned;

/// The version of a preview's identity ([`PreviewId`]) and its lines: a
/// hash of another version never matches.
pub const PREVIEW_SCHEMA: u32 = 1;

/// What a dry run's JSON document is (its `schema` key), as
/// `docs/preview.schema.json` describes it.
pub const PREVIEW_DOCUMENT: &str = "drctl.preview/v1";

/// One gate of a dry run: what it would decide, on what it read. Its JSON
/// is `{"plan", "gate", "decision"?, "detail"}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum PreviewGate {
    /// The RPO gate: it reads the lag as a run would.
    Rpo {
        /// The plan.
        plan: String,
        /// `would pass` or `would refuse`.
        decision: String,
        /// What it read.
        detail: RpoDetail,
    },
    /// The approval gate: whether the tier requires it, and whether the
    /// flags give it.
    Approval {
        /// The plan.
        plan: String,
        /// Required and given.
        detail: PreviewApproval,
    },
}

/// The approval a dry run would need.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewApproval {
    /// The tier requires approval.
    pub required: bool,
    /// `--approve` or `--emergency` gives it.
    pub given: bool,
}

/// One row of a dry run. Its JSON is `{"step", "description", "after",
/// "calls"}`, and `"error"` in place of the calls' contents when the
/// step's state could not be read (`calls` then empty):
/// `docs/preview.schema.json`.
#[derive(Debug, Clone)]
pub struct PreviewRow {
    /// Step id.
    pub step: String,
    /// What it does.
    pub description: String,
    /// The steps that must have succeeded before it starts (its
    /// preconditions in the run's order; each call is also sent only when
    /// its resource still reads as `current` says, since a step reads the
    /// cloud before it acts).
    pub after: Vec<String>,
    /// Calls and state changes, or the error reading state.
    pub calls: Result<Vec<Planned>, String>,
}

impl Serialize for PreviewRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut row = s.serialize_struct("PreviewRow", 5)?;
        row.serialize_field("step", &self.step)?;
        row.serialize_field("description", &self.description)?;
        row.serialize_field("after", &self.after)?;
        match &self.calls {
            Ok(calls) => row.serialize_field("calls", calls)?,
            Err(e) => {
                row.serialize_field("calls", &[] as &[Planned])?;
                row.serialize_field("error", e)?;
            }
        }
        row.end()
    }
}

impl Engine {
    /// Dry run: every step, the API calls it would make, current → desired.
    pub async fn preview(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
    ) -> Result<(Vec<PreviewRow>, Vec<PreviewGate>), EngineError> {
        let steps = compile_all(plans, &opts.target, &opts.mode)?;
        let outputs = BTreeMap::new();
        let mut rows = Vec::new();
        for s in &steps {
            let plan = plans
                .iter()
                .find(|p| p.name() == s.plan)
                .expect("steps come from plans");
            let budget = opts.step_timeout.unwrap_or(plan.tier.rto);
            let graph = plan_graph(&steps, plan.name());
            let cx = self.cx(plan, graph, opts, "dry-run", &outputs, budget, None);
            let calls = s.kind.action().preview(&cx).await.map_err(|e| e.summary());
            rows.push(PreviewRow {
                step: s.id.to_string(),
                description: s.description.clone(),
                after: (s.deps.iter()).map(|d| steps[*d].id.to_string()).collect(),
                calls,
            });
        }
        let mut gates = Vec::new();
        for p in plans {
            let (rpo, refusal) = self.rpo_gate(p, opts).await;
            let would = if refusal.is_some() {
                "would refuse"
            } else {
                "would pass"
            };
            gates.push(PreviewGate::Rpo {
                plan: p.name().into(),
                decision: would.into(),
                detail: rpo,
            });
            gates.push(PreviewGate::Approval {
                plan: p.name().into(),
                detail: PreviewApproval {
                    required: p.tier.approval == Approval::Required,
                    given: opts.approve.is_some() || opts.emergency,
                },
            });
        }
        Ok((rows, gates))
    }
}

/// What identifies a preview: its lines and their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PreviewId {
    /// [`PREVIEW_SCHEMA`].
    pub schema_version: u32,
    /// The SHA-256 of the lines (32 hex digits, prefixed `p1-`).
    pub hash: String,
    /// What the run would do, one fact a line ([`lines`]).
    pub lines: Vec<String>,
}

/// A preview approved for a run: its hash, and its lines when given (to
/// say what changed when a fresh preview differs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedPreview {
    /// The approved hash.
    pub hash: String,
    /// The approved preview's lines, when the approver's copy is given.
    pub lines: Option<Vec<String>>,
}

fn planned_line(step: &str, p: &Planned) -> String {
    let call = if p.call.is_empty() {
        "no call"
    } else {
        &p.call
    };
    format!(
        "step {step}: {call} {} ({}) -> {}{}",
        p.resource,
        p.region,
        p.desired,
        if p.change { "" } else { " (no change)" }
    )
}

/// What a run of `kind` to `target` would do, one fact a line (pure; see
/// the module docs for what is left out).
pub fn lines(
    kind: RunKind,
    target: &str,
    rows: &[PreviewRow],
    gates: &[PreviewGate],
) -> Vec<String> {
    let mut out = vec![format!("{kind} to {target}")];
    for r in rows {
        match &r.calls {
            Ok(calls) if calls.is_empty() => out.push(format!("step {}: nothing to call", r.step)),
            Ok(calls) => out.extend(calls.iter().map(|p| planned_line(&r.step, p))),
            Err(_) => out.push(format!("step {}: its state could not be read", r.step)),
        }
    }
    for g in gates {
        out.push(match g {
            PreviewGate::Rpo { plan, decision, .. } => format!("gate rpo of {plan}: {decision}"),
            PreviewGate::Approval { plan, detail } => format!(
                "gate approval of {plan}: {}",
                if detail.required {
                    "required"
                } else {
                    "not required"
                }
            ),
        });
    }
    out
}

/// The hash of `lines` (pure).
pub fn hash(lines: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(format!("drctl-preview/{PREVIEW_SCHEMA}\n").as_bytes());
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("p1-{}", &hex::encode(h.finalize())[..32])
}

/// A preview's identity (pure).
pub fn identify(
    kind: RunKind,
    target: &str,
    rows: &[PreviewRow],
    gates: &[PreviewGate],
) -> PreviewId {
    let lines = lines(kind, target, rows, gates);
    PreviewId {
        schema_version: PREVIEW_SCHEMA,
        hash: hash(&lines),
        lines,
    }
}

/// What changed from `approved` to `fresh`, line by line (pure): `- ` a
/// line no longer there, `+ ` a new one.
pub fn changed(approved: &[String], fresh: &[String]) -> Vec<String> {
    let (a, f): (BTreeSet<&String>, BTreeSet<&String>) =
        (approved.iter().collect(), fresh.iter().collect());
    let gone = approved
        .iter()
        .filter(|l| !f.contains(l))
        .map(|l| format!("- {l}"));
    let new = fresh
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| format!("+ {l}"));
    gone.chain(new).collect()
}

impl Engine {
    /// The preview gate, when the run is to run as an approved preview:
    /// a fresh preview (made under the run's locks), compared with the
    /// approved hash, journaled for every plan. Returns the refusal when
    /// they differ.
    pub(super) async fn journal_preview(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        j: &mut Journal,
    ) -> Result<Option<Refusal>, EngineError> {
        let Some(approved) = &opts.approved_preview else {
            return Ok(None);
        };
        let (rows, gates) = self.preview(plans, opts).await?;
        let fresh = identify(opts.kind, &opts.target, &rows, &gates);
        let same = fresh.hash == approved.hash;
        let what = approved.lines.as_deref().map(|l| changed(l, &fresh.lines));
        for p in plans {
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Preview,
                decision: if same {
                    Decision::Pass
                } else {
                    Decision::Refuse
                },
                detail: json!({
                    "approved": approved.hash,
                    "fresh": fresh.hash,
                    "changed": what,
                }),
            })
            .await?;
        }
        if same {
            return Ok(None);
        }
        let said = match &what {
            Some(c) if !c.is_empty() => format!("; what changed:\n  {}", c.join("\n  ")),
            _ => format!("; the run would now do:\n  {}", fresh.lines.join("\n  ")),
        };
        Ok(Some(
            Refusal::new(format!(
                "the approved preview {} is not what this run would do now (a fresh preview is {}){said}",
                approved.hash, fresh.hash
            ))
            .hint("review the fresh preview (`--dry-run --output json`), approve its hash, then run with --approve-preview again"),
        ))
    }
}

#[cfg(test)]
mod tests;
