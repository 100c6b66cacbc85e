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
//! It also covers what else decides what the run may do: every call a
//! step may make, a fallback included (Aurora's detach when a managed
//! failover is refused), each step's order (`after`), the data loss the
//! run accepts and whether it takes over a lock. And where and when it
//! was made: the deployment (the journals' signing domain) and the AWS
//! account it reads, and its time, which the hash itself carries
//! (`p2-<made>-<digest>`), so staging's approval does not pass
//! production's gate, nor one made long ago ([`PREVIEW_VALID_FOR`]). A
//! preview with a step whose state could not be read says nothing of what
//! that step would do, and is not approvable.
//!
//! The approval is itself a gate ([`GateName::Preview`]), journaled under
//! the plans' locks after the approval and RPO gates, right before the
//! first step (an approval prompt may have waited for minutes): the
//! journal says which preview a run ran as approved, or why it refused
//! (what changed, line by line, when the approved preview's lines are
//! given).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Timelike as _, Utc};
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
pub const PREVIEW_SCHEMA: u32 = 2;

/// How long an approved preview may be run after it was made: a day,
/// long enough for a change ticket's review, too short for an approval to
/// be kept for the next outage.
pub const PREVIEW_VALID_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What a dry run's JSON document is (its `schema` key), as
/// `docs/preview.schema.json` describes it.
pub const PREVIEW_DOCUMENT: &str = "drctl.preview/v2";

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
    /// The protections gate: the record-set protections on what the
    /// plan's switch by records would change, read as a run would.
    Protections {
        /// The plan.
        plan: String,
        /// `would pass` or `would refuse`.
        decision: String,
        /// What it read, zone by zone (`protections`, or `unread`, or
        /// `missing`), and why it would refuse.
        detail: serde_json::Value,
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
            gates.push(PreviewGate::Rpo {
                plan: p.name().into(),
                decision: would(refusal.is_some()).into(),
                detail: rpo,
            });
            if opts.mode.fails_over() {
                let (zones, _, refusal) = self.protections_gate(p, &opts.target).await;
                if !zones.is_empty() {
                    gates.push(PreviewGate::Protections {
                        plan: p.name().into(),
                        decision: would(refusal.is_some()).into(),
                        detail: serde_json::json!({
                            "zones": zones,
                            "refusal": refusal.map(|r| r.to_string()),
                        }),
                    });
                }
            }
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

/// A gate's decision as a dry run says it.
fn would(refuses: bool) -> &'static str {
    if refuses {
        "would refuse"
    } else {
        "would pass"
    }
}

/// What identifies a preview: its lines and their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PreviewId {
    /// [`PREVIEW_SCHEMA`].
    pub schema_version: u32,
    /// `p2-`, the time it was made (`YYYYMMDDTHHMMSSZ`), `-`, and the
    /// SHA-256 of the lines (32 hex digits) ([`hash`]).
    pub hash: String,
    /// What the run would do, one fact a line ([`lines`]).
    pub lines: Vec<String>,
    /// The steps whose state could not be read: while there is one, the
    /// preview is not approvable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

/// What a preview is made in, besides its steps and gates: the run's
/// terms, and where and when it was made. Each is a line of the preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewContext {
    /// The deployment: the journals' signing domain (`[keys] domain`, else
    /// the state's URL); `None`: none (a local state directory).
    pub deployment: Option<String>,
    /// The AWS account it reads, from STS; or why it could not be read.
    pub account: Result<String, String>,
    /// When it was made (whole seconds).
    pub made: DateTime<Utc>,
    /// The data loss the run accepts (`--accept-data-loss`).
    pub accept_data_loss: Option<std::time::Duration>,
    /// Whether it takes over a lock (`--force-unlock`), and why.
    pub force_unlock: Option<Option<String>>,
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

/// The context's lines: where and when, and the run's terms.
fn context_lines(c: &PreviewContext) -> Vec<String> {
    let seconds = chrono::SecondsFormat::Secs;
    let until = c.made + chrono::Duration::from_std(PREVIEW_VALID_FOR).unwrap_or_default();
    vec![
        match &c.deployment {
            Some(d) => format!("deployment {d}"),
            None => "deployment none (a local state)".into(),
        },
        // Unread, without the error's words: they vary from one read to
        // the next, and a preview made while STS does not answer must
        // match one made the same way.
        match &c.account {
            Ok(a) => format!("aws account {a}"),
            Err(_) => "aws account unread".into(),
        },
        format!(
            "made {}, approvable until {}",
            c.made.to_rfc3339_opts(seconds, true),
            until.to_rfc3339_opts(seconds, true)
        ),
        match c.accept_data_loss {
            Some(d) => format!(
                "data loss accepted: up to {}",
                crate::plan::duration::format_duration(d)
            ),
            None => "data loss accepted: none".into(),
        },
        lock_line(&c.force_unlock),
    ]
}

/// The line of a preview that says whether its run takes over a lock
/// (`--force-unlock`, and why).
fn lock_line(force_unlock: &Option<Option<String>>) -> String {
    match force_unlock {
        Some(Some(why)) => format!("lock: taken over (--force-unlock: {why})"),
        Some(None) => "lock: taken over from a dead holder (--force-unlock)".into(),
        None => "lock: not taken over".into(),
    }
}

/// Whether a run of `opts` of `plans`, in deployment `domain` (empty: a
/// local state), may take its locks: a takeover (`--force-unlock`) happens
/// when the locks are taken, before the preview gate can compare a fresh
/// preview with the approved one, so a run approved as a preview takes over
/// only when the approver's lines (a saved `--dry-run --output json`) say
/// it does, in the same words, and are for this run: its kind and target,
/// its deployment, its plans, and not past their day (what can be checked
/// without reading the cloud; the gate checks the rest). A hash alone
/// cannot say it. `Err`: the refusal (exit 3), before any lock, journal or
/// write.
pub(super) fn takeover_approved(
    opts: &RunOptions,
    plans: &[Plan],
    domain: &str,
) -> Result<(), Refusal> {
    let Some(approved) = opts.approved_preview.as_ref().filter(|_| opts.force_unlock) else {
        return Ok(());
    };
    let Some(lines) = &approved.lines else {
        return Err(takeover_refused(
            &approved.hash,
            "a hash alone does not say whether the approver saw a takeover".into(),
        ));
    };
    let ours = lock_line(&Some(opts.force_reason.clone()));
    let deployment = match domain {
        "" => "deployment none (a local state)".to_string(),
        d => format!("deployment {d}"),
    };
    let head = format!("{} to {}", opts.kind, opts.target);
    let named: BTreeSet<&str> = (lines.iter())
        .filter_map(|l| l.strip_prefix("step ")?.split_once('/').map(|(p, _)| p))
        .collect();
    let wanted: BTreeSet<&str> = plans.iter().map(|p| p.name()).collect();
    let stale = made_of(&approved.hash).map_or_else(
        || Some("its hash is not a preview's".to_string()),
        |m| expired(m, Utc::now()),
    );
    let said = if !lines.contains(&ours) {
        match lines.iter().find(|l| l.starts_with("lock: ")) {
            Some(theirs) => format!("it says `{theirs}`, this run would say `{ours}`"),
            None => format!("it says nothing of a lock, this run would say `{ours}`"),
        }
    } else if lines.first() != Some(&head) {
        format!(
            "it is a preview of `{}`, this run is `{head}`",
            lines.first().map_or("", String::as_str)
        )
    } else if !lines.contains(&deployment) {
        format!("it is not a preview of this deployment (`{deployment}`)")
    } else if named != wanted {
        format!(
            "it previews plans {}, this run has {}",
            named.into_iter().collect::<Vec<_>>().join(", "),
            wanted.into_iter().collect::<Vec<_>>().join(", ")
        )
    } else if let Some(why) = stale {
        why
    } else {
        return Ok(());
    };
    Err(takeover_refused(&approved.hash, said))
}

/// The refusal of a takeover the approved preview `hash` does not cover.
fn takeover_refused(hash: &str, said: String) -> Refusal {
    Refusal::new(format!(
        "the approved preview {hash} does not cover taking over a lock (--force-unlock): {said}; nothing was taken over"
    ))
    .hint("make the preview with the same --force-unlock, have it approved, and give the saved file (`--dry-run --output json > preview.json`, then --approve-preview preview.json)")
}

/// What a run of `kind` to `target` would do, one fact a line (pure; see
/// the module docs for what is left out).
pub fn lines(
    kind: RunKind,
    target: &str,
    rows: &[PreviewRow],
    gates: &[PreviewGate],
    context: &PreviewContext,
) -> Vec<String> {
    let mut out = vec![format!("{kind} to {target}")];
    out.extend(context_lines(context));
    for r in rows {
        match &r.calls {
            Ok(calls) if calls.is_empty() => out.push(format!("step {}: nothing to call", r.step)),
            Ok(calls) => out.extend(calls.iter().map(|p| planned_line(&r.step, p))),
            Err(_) => out.push(format!("step {}: its state could not be read", r.step)),
        }
        if !r.after.is_empty() {
            out.push(format!("step {} after {}", r.step, r.after.join(", ")));
        }
    }
    for g in gates {
        out.push(match g {
            PreviewGate::Rpo { plan, decision, .. } => format!("gate rpo of {plan}: {decision}"),
            PreviewGate::Protections { plan, decision, .. } => {
                format!("gate protections of {plan}: {decision}")
            }
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

/// The hash of `lines` (pure): `p2-`, the time its `made` line names,
/// `-`, and the SHA-256 of the lines, so that a hash alone says when its
/// preview was made, and that time cannot be changed without changing it.
pub fn hash(lines: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(format!("drctl-preview/{PREVIEW_SCHEMA}\n").as_bytes());
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    let made = (lines.iter())
        .find_map(|l| l.strip_prefix("made "))
        .and_then(|l| l.split(',').next())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "00000000T000000Z".to_string(),
            |t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string(),
        );
    format!("p2-{made}-{}", &hex::encode(h.finalize())[..32])
}

/// Whether `s` is a preview hash as [`hash`] writes it (case aside).
pub fn is_hash(s: &str) -> bool {
    made_of(s).is_some()
        && s.rsplit('-').next().is_some_and(|x| {
            x.len() == 32
                && x.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// When the preview of hash `hash` was made (`None`: not a hash of this
/// schema).
pub fn made_of(hash: &str) -> Option<DateTime<Utc>> {
    let mut parts = hash.split('-');
    let (Some("p2"), Some(made), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    chrono::NaiveDateTime::parse_from_str(made, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// A preview's identity (pure).
pub fn identify(
    kind: RunKind,
    target: &str,
    rows: &[PreviewRow],
    gates: &[PreviewGate],
    context: &PreviewContext,
) -> PreviewId {
    let lines = lines(kind, target, rows, gates, context);
    PreviewId {
        schema_version: PREVIEW_SCHEMA,
        hash: hash(&lines),
        lines,
        unread: (rows.iter())
            .filter(|r| r.calls.is_err())
            .map(|r| r.step.clone())
            .collect(),
    }
}

/// Why an approved preview made at `made` may not run at `now` (`None`:
/// it may): too old, or made in the future (a clock far off, or a forged
/// time).
pub fn expired(made: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let valid = chrono::Duration::from_std(PREVIEW_VALID_FOR).unwrap_or_default();
    let skew = chrono::Duration::minutes(5);
    if made > now + skew {
        return Some(format!(
            "it says it was made at {made}, later than now ({now})"
        ));
    }
    (now - made > valid).then(|| {
        format!(
            "it was made at {made}, more than {} ago: an approval holds for that long",
            crate::plan::duration::format_duration(PREVIEW_VALID_FOR)
        )
    })
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
        let again = "review a fresh preview (`--dry-run --output json`), approve its hash, then run with --approve-preview again";
        let now = Utc::now();
        let made = made_of(&approved.hash);
        let stale = match made {
            None => Some(format!(
                "{} is not a preview hash of schema {PREVIEW_SCHEMA}",
                approved.hash
            )),
            Some(m) => expired(m, now),
        };
        let fresh = match made {
            Some(m) if stale.is_none() => {
                let (rows, gates) = self.preview(plans, opts).await?;
                let context = self.preview_context(opts, m).await;
                Some(identify(opts.kind, &opts.target, &rows, &gates, &context))
            }
            _ => None,
        };
        let what = (approved.lines.as_deref())
            .zip(fresh.as_ref())
            .map(|(l, f)| changed(l, &f.lines));
        let refusal = match (&stale, &fresh) {
            (Some(why), _) => Some(format!(
                "the approved preview {} cannot run: {why}",
                approved.hash
            )),
            (None, Some(f)) if !f.unread.is_empty() => Some(format!(
                "the approved preview {} cannot be checked: the state of {} could not be read now, so what {} would do is not known",
                approved.hash,
                f.unread.join(", "),
                if f.unread.len() == 1 { "it" } else { "they" }
            )),
            (None, Some(f)) if f.hash != approved.hash => {
                let said = match &what {
                    Some(c) if !c.is_empty() => format!("; what changed:\n  {}", c.join("\n  ")),
                    _ => format!("; the run would now do:\n  {}", f.lines.join("\n  ")),
                };
                Some(format!(
                    "the approved preview {} is not what this run would do now (a fresh preview is {}){said}",
                    approved.hash, f.hash
                ))
            }
            _ => None,
        };
        for p in plans {
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Preview,
                decision: if refusal.is_none() {
                    Decision::Pass
                } else {
                    Decision::Refuse
                },
                detail: json!({
                    "approved": approved.hash,
                    "fresh": fresh.as_ref().map(|f| &f.hash),
                    "changed": what,
                    "unread": fresh.as_ref().map(|f| &f.unread),
                    "stale": stale,
                }),
            })
            .await?;
        }
        Ok(refusal.map(|r| Refusal::new(r).hint(again)))
    }

    /// What a preview made at `made` for `opts` is made in
    /// ([`PreviewContext`]): the deployment its journals are signed for,
    /// the AWS account STS says it reads (or why not), the run's terms.
    pub async fn preview_context(&self, opts: &RunOptions, made: DateTime<Utc>) -> PreviewContext {
        let domain = &self.store.keys().domain;
        let account = match self.clouds.identity.caller(&opts.target).await {
            Ok(id) => Ok(id.account),
            Err(e) => Err(e.summary()),
        };
        PreviewContext {
            deployment: (!domain.is_empty()).then(|| domain.clone()),
            account,
            made: made.with_nanosecond(0).unwrap_or(made),
            accept_data_loss: opts.accept_data_loss,
            force_unlock: opts.force_unlock.then(|| opts.force_reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
