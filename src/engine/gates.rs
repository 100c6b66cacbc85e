//! The gates a run passes before anything changes (approval, RPO), and
//! the rules they judge by.
//!
//! The RPO rule is [`crate::plan::rpo`]'s, shared with `drctl watch`;
//! [`LagCheck`] applies it to one reading and says it in a sentence, shared
//! by the RPO gate (before a failover promotes anything) and `drctl status`
//! (is a standby ready?): they must judge a lag alike and say it in the same words, or an operator
//! reads "ready" in one place and "refused" in the other. The engine's
//! gates read (replica lag, the operator's confirmation), decide with those
//! rules, and journal every decision, passed or refused, before the first
//! step: a refused run's journal says why it changed nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::StreamExt;
use serde_json::json;

use crate::cloud::DbRole;
use crate::journal::event::{Decision, Event, GateName};
use crate::journal::{ApprovalDetail, Journal, LagReading, RpoDetail};
use crate::plan::duration::{format_duration, from_secs_f64};
use crate::plan::kinds::RpoSource;
use crate::plan::kinds::promoting::rpo_sources;
use crate::plan::kinds::traffic::{self, PROTECTIONS_BOUND};
use crate::plan::{Approval, Plan};
use crate::steps::graph::RunMode;

use super::{Engine, EngineError, Operator, RETROACTIVE_APPROVAL, Refusal, RunOptions};

/// A zone as the protections gate read it: found, the protections that
/// hold the switch's sets, and each in words ([`traffic::held`]).
struct ZoneHeld {
    found: crate::plan::kinds::traffic::ZoneFound,
    held: Vec<crate::cloud::Protection>,
    said: Vec<(String, String)>,
}

/// One replica's lag as read, and what it is judged against.
#[derive(Debug, Clone, Copy)]
pub struct LagCheck<'a> {
    /// The replica's instance id.
    pub instance: &'a str,
    /// The region it is in (the failover's target).
    pub region: &'a str,
    /// Its lag (the maximum over the window), when any datapoint was read.
    pub lag_seconds: Option<f64>,
    /// The window the lag was read over.
    pub window: Duration,
    /// The tier's name and RPO.
    pub tier: &'a str,
    /// The tier's RPO.
    pub rpo: Duration,
    /// `--accept-data-loss`, when given.
    pub accepted: Option<Duration>,
    /// The point the copy can be restored to, when the reading is that
    /// point's age (a backup standby's newest restorable point), not a
    /// replication lag.
    pub point: Option<DateTime<Utc>>,
}

impl LagCheck<'_> {
    /// Whether the lag is within the RPO (`None`: unknown).
    pub fn within_rpo(&self) -> Option<bool> {
        crate::plan::rpo::within(self.lag(), self.rpo)
    }

    /// The lag as a duration (a huge or odd reading saturates).
    fn lag(&self) -> Option<Duration> {
        self.lag_seconds.map(from_secs_f64)
    }

    /// Whether a failover may promote this replica on its lag alone: within
    /// the RPO, or covered by `--accept-data-loss` (which also covers an
    /// unknown lag).
    pub fn passes(&self) -> bool {
        crate::plan::rpo::allows(self.lag(), self.rpo, self.accepted)
    }

    /// What is wrong with the lag, in one sentence, or `None` when it
    /// passes. `unknown` says why an unknown lag is unknown.
    pub fn problem(&self, unknown: &str) -> Option<String> {
        if self.passes() {
            return None;
        }
        let over = self
            .accepted
            .map(|a| format!(", and above --accept-data-loss {}", format_duration(a)))
            .unwrap_or_default();
        let (instance, region, tier) = (self.instance, self.region, self.tier);
        let rpo = format_duration(self.rpo);
        Some(match (self.lag_seconds, self.point) {
            (Some(l), Some(point)) => format!(
                "the newest point {instance} can be restored to in {region} is {} ({} old), older than the {tier} tier's RPO of {rpo}{over}",
                point.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                format_duration(from_secs_f64(l.round())),
            ),
            (Some(l), None) => format!(
                "replica lag of {instance} in {region} is {} (max over the last {}), above the {tier} tier's RPO of {rpo}{over}",
                format_duration(from_secs_f64(l.round())),
                format_duration(self.window),
            ),
            (None, _) => format!("replica lag of {instance} in {region} is unknown ({unknown})"),
        })
    }
}

/// The hint of an RPO refusal.
pub const RPO_HINT: &str = "data written in that window would be lost; to accept it, re-run with --accept-data-loss DUR (at least the lag)";

/// A gate's outcome: what it read and decided (journaled as its detail,
/// `D`), and its refusal, when it refuses.
type GateOutcome<D> = (D, Option<Refusal>);

/// What the gates left a run: the RPO readings per plan (steps reuse them
/// while fresh) and the first refusal, if any gate refused.
pub(super) type GatesPassed = (
    BTreeMap<String, RpoDetail>,
    BTreeMap<String, traffic::ZonesRead>,
    Option<Refusal>,
);

impl Engine {
    /// Runs every plan's gates and journals each decision: approvals one
    /// plan at a time (they may ask a person), then the replica lag of every
    /// approved plan read concurrently, journaled in plan order.
    pub(super) async fn journal_gates(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        j: &mut Journal,
        operator: &Operator,
    ) -> Result<GatesPassed, EngineError> {
        let mut refusal = None;
        let approved = self
            .journal_approvals(plans, opts, j, operator, &mut refusal)
            .await?;
        let rpo_readings = self.journal_rpo(&approved, opts, j, &mut refusal).await?;
        let zones_read = if refusal.is_none() {
            (self.journal_protections(&approved, opts, j, &mut refusal)).await?
        } else {
            BTreeMap::new()
        };
        // A run approved as a preview runs only as that preview, checked
        // last, right before the first step: an approval prompt above may
        // have waited for minutes, and what the run does is what the world
        // says now.
        if refusal.is_none() {
            refusal = self.journal_preview(plans, opts, j).await?;
        }
        Ok((rpo_readings, zones_read, refusal))
    }

    /// The approval gate of each plan, journaled; returns the plans
    /// approved, and keeps the first refusal in `refusal`.
    async fn journal_approvals<'p>(
        &self,
        plans: &'p [Plan],
        opts: &RunOptions,
        j: &mut Journal,
        operator: &Operator,
        refusal: &mut Option<Refusal>,
    ) -> Result<Vec<&'p Plan>, EngineError> {
        let mut approved = Vec::new();
        for p in plans {
            let (mut detail, refused) = self.approval_gate(p, opts, operator.arn.as_deref());
            if detail.required == Some(true) {
                detail.identity_error = operator.identity_error.clone();
            }
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Approval,
                decision: decision(&refused, &detail),
                detail: json!(detail),
            })
            .await?;
            match refused {
                Some(r) => {
                    refusal.get_or_insert(r);
                }
                None => approved.push(p),
            }
        }
        Ok(approved)
    }

    /// The RPO gate of each approved plan, journaled; returns what it read
    /// per plan, and keeps the first refusal in `refusal`.
    async fn journal_rpo(
        &self,
        approved: &[&Plan],
        opts: &RunOptions,
        j: &mut Journal,
        refusal: &mut Option<Refusal>,
    ) -> Result<BTreeMap<String, RpoDetail>, EngineError> {
        // Read concurrently, but no more at once than the run's parallelism:
        // hundreds of unbounded reads swamp a rate-limited API (and the
        // emulators) and delay every plan's first step.
        let readings: Vec<_> = futures::stream::iter(approved.iter())
            .map(|p| self.rpo_gate(p, opts))
            .buffered(opts.slots())
            .collect()
            .await;
        let mut rpo_readings = BTreeMap::new();
        for (p, (detail, refused)) in approved.iter().zip(readings) {
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Rpo,
                decision: rpo_decision(&refused, &detail),
                detail: json!(detail),
            })
            .await?;
            if let Some(r) = refused {
                refusal.get_or_insert(r);
            }
            rpo_readings.insert(p.name().to_string(), detail);
        }
        Ok(rpo_readings)
    }

    /// The protections gate of each approved plan that switches by
    /// records, journaled: a record set its switch would change, held by a
    /// record-set protection, refuses the run before its first cloud write,
    /// naming it and how to lift it (drctl never does). Read beside the
    /// recovery path: concurrently, each zone within [`PROTECTIONS_BOUND`],
    /// and a read that fails or does not answer passes, said in the
    /// journal and on the terminal (Route 53's API may be what the outage
    /// took; the switch names a protection if one refuses it).
    async fn journal_protections(
        &self,
        approved: &[&Plan],
        opts: &RunOptions,
        j: &mut Journal,
        refusal: &mut Option<Refusal>,
    ) -> Result<BTreeMap<String, traffic::ZonesRead>, EngineError> {
        let mut read_by_plan = BTreeMap::new();
        if !opts.mode.fails_over() {
            return Ok(read_by_plan);
        }
        // No more plans read at once than the run's parallelism, as the
        // RPO gate: a rate-limited API answers a swarm of reads late.
        let reads: Vec<_> = futures::stream::iter(approved.iter())
            .map(|p| self.protections_gate(p, &opts.target))
            .buffered(opts.slots())
            .collect()
            .await;
        for (p, (zones, read, refused)) in approved.iter().zip(reads) {
            if zones.is_empty() {
                continue;
            }
            for unread in zones.iter().filter_map(|z| z["unread"].as_str()) {
                self.reporter.note(&format!(
                    "plan {}: record-set protections not read ({unread}); the switch names one if it refuses",
                    p.name()
                ));
            }
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Protections,
                decision: if refused.is_some() {
                    Decision::Refuse
                } else {
                    Decision::Pass
                },
                detail: json!({ "zones": zones }),
            })
            .await?;
            if let Some(r) = refused {
                refusal.get_or_insert(r);
            }
            read_by_plan.insert(p.name().to_string(), read);
        }
        Ok(read_by_plan)
    }

    /// What holds each zone of `plan`'s records-mode switch to `target`
    /// (through the zone's kind: [`traffic::holding`]): the journaled
    /// detail, the zones read (for preflight), and the refusal.
    pub(super) async fn protections_gate(
        &self,
        plan: &Plan,
        target: &str,
    ) -> (Vec<serde_json::Value>, traffic::ZonesRead, Option<Refusal>) {
        let zones = traffic::by_zone(traffic::switching(plan));
        let reads = zones.into_iter().map(|(subject, records)| async move {
            let z = records[0].zone();
            let want: Vec<_> = (records.iter())
                .flat_map(|d| d.wanted(plan, target, None))
                .collect();
            let read = async {
                match z.api.find(&self.clouds, z).await? {
                    Some(found) => {
                        let held = traffic::holding(&self.clouds, (z, &found), &want).await?;
                        let said = (held.iter()).map(|p| traffic::held(z, &found, p)).collect();
                        Ok(Some(ZoneHeld { found, held, said }))
                    }
                    // A missing zone is preflight's to name.
                    None => Ok(None),
                }
            };
            let read: Result<Option<ZoneHeld>, String> =
                match tokio::time::timeout(PROTECTIONS_BOUND, read).await {
                    Ok(r) => r.map_err(|e: crate::cloud::CloudError| e.summary()),
                    Err(_) => Err(format!(
                        "no answer within {}",
                        format_duration(PROTECTIONS_BOUND)
                    )),
                };
            (subject, read)
        });
        let (mut detail, mut zones_read) = (Vec::new(), traffic::ZonesRead::new());
        let (mut said, mut hints) = (Vec::new(), Vec::new());
        for (subject, read) in futures::future::join_all(reads).await {
            match read {
                Ok(Some(ZoneHeld {
                    found,
                    held,
                    said: words,
                })) => {
                    detail.push(json!({ "zone": subject, "protections": held }));
                    for (why, how) in words {
                        said.push(why);
                        hints.push(how);
                    }
                    zones_read.insert(subject, (found, held));
                }
                Ok(None) => detail.push(json!({ "zone": subject, "missing": true })),
                Err(why) => detail.push(json!({ "zone": subject, "unread": why })),
            }
        }
        let refusal = (!said.is_empty()).then(|| {
            Refusal::new(format!("plan {}: {}", plan.name(), said.join("; ")))
                .hint(format!("{}; nothing was changed", hints.join("; ")))
        });
        (detail, zones_read, refusal)
    }

    /// Reads the lag of the plan's RPO sources (promoted replicas) and decides.
    /// Returns (gate detail, refusal message).
    pub(super) async fn rpo_gate(&self, plan: &Plan, opts: &RunOptions) -> GateOutcome<RpoDetail> {
        if !opts.mode.fails_over() {
            let why = "no replica is promoted: the RPO achieved is measured instead";
            return (
                RpoDetail::NotApplicable {
                    applies: false,
                    why: why.into(),
                },
                None,
            );
        }
        let mut dbs = Vec::new();
        let mut refusals = Vec::new();
        // The gate judges the move the run will make: a switchover loses
        // nothing, whatever the lag (its old writer, just made a secondary,
        // has published none yet), and the promote step switches over or
        // refuses, never a lossier move.
        for (source, switchover) in rpo_sources(&plan.spec, opts.mode.is_planned()) {
            if switchover {
                dbs.push(switchover_reading(source, &opts.target));
                continue;
            }
            let (db, problem) = self.rpo_source(plan, source, opts).await;
            dbs.push(db);
            refusals.extend(problem);
        }
        let detail = RpoDetail::Checked {
            rpo_seconds: Some(plan.tier.rpo.as_secs()),
            accept_data_loss_seconds: opts.accept_data_loss.map(|a| a.as_secs()),
            databases: dbs,
        };
        let refusal = (!refusals.is_empty()).then(|| {
            Refusal::new(format!("plan {}: {}", plan.name(), refusals.join("; "))).hint(RPO_HINT)
        });
        (detail, refusal)
    }

    /// Reads one RPO source's lag in the target region (whatever its
    /// kind: the kind reads its own metric) and judges it: its reading
    /// (journaled) and what is wrong with it, when it refuses.
    async fn rpo_source(
        &self,
        plan: &Plan,
        source: &dyn RpoSource,
        opts: &RunOptions,
    ) -> (LagReading, Option<String>) {
        let id = source.copy(&opts.target).unwrap_or_default().to_string();
        let lag = source
            .lag(&self.clouds, &opts.target, opts.lag_window)
            .await;
        let read_at = Utc::now();
        let (lag_s, note) = match &lag {
            Ok(r) => (
                r.max.map(|m| m.as_secs_f64()),
                format!(
                    "{} datapoints over {}",
                    r.datapoints,
                    format_duration(opts.lag_window)
                ),
            ),
            Err(e) => (None, e.message.clone()),
        };
        let check = LagCheck {
            instance: &id,
            region: &opts.target,
            lag_seconds: lag_s,
            window: opts.lag_window,
            tier: &plan.tier.name,
            rpo: plan.tier.rpo,
            accepted: opts.accept_data_loss,
            point: (lag.as_ref().ok())
                .filter(|_| source.about().point)
                .and_then(|r| r.latest.map(|(_, at)| at)),
        };
        let ok_by_lag = check.passes();
        // Already a primary (a re-run, a plan already served from the
        // target): nothing is promoted, so this run loses nothing and the
        // gate has nothing to guard. Asked only when the lag would refuse:
        // one request fewer on every failover's path.
        let already_primary = if ok_by_lag {
            None
        } else {
            Some(matches!(
                source.describe(&self.clouds, &opts.target).await,
                Ok(Some(c)) if c.role == DbRole::Primary
            ))
        };
        let ok = ok_by_lag || already_primary == Some(true);
        let problem = if ok { None } else { check.problem(&note) };
        let (latest, points) = match &lag {
            Ok(r) => (r.latest.map(|(d, _)| d.as_secs_f64()), r.datapoints),
            Err(_) => (None, 0),
        };
        let db = LagReading {
            resource: source.id().to_string(),
            instance: id.clone(),
            lag_seconds: lag_s,
            latest_lag_seconds: latest,
            datapoints: points as u64,
            read_at: Some(read_at),
            within_rpo: check.within_rpo(),
            reading: note,
            already_primary,
            accepted: ok,
            switchover: false,
        };
        (db, problem)
    }

    /// Whether `plan` may run without (more) approval: a shadow drill and a
    /// tier that does not require it pass; otherwise `--emergency`,
    /// `--approve`, or the operator's confirmation on a terminal.
    fn approval_gate(
        &self,
        plan: &Plan,
        opts: &RunOptions,
        operator: Option<&str>,
    ) -> GateOutcome<ApprovalDetail> {
        let required = |d: ApprovalDetail| ApprovalDetail {
            required: Some(true),
            ..d
        };
        let operator = operator.map(str::to_string);
        if opts.mode.is_shadow_drill() {
            let why = "a shadow drill changes no production resource";
            let d = ApprovalDetail {
                required: Some(false),
                why: Some(why.into()),
                ..Default::default()
            };
            return (d, None);
        }
        // A switchover drill moves users: approval whatever the tier says.
        let switchover = matches!(opts.mode, RunMode::Drill { .. });
        if plan.tier.approval != Approval::Required && !switchover {
            let d = ApprovalDetail {
                required: Some(false),
                ..Default::default()
            };
            return (d, None);
        }
        if opts.emergency {
            let by =
                Utc::now() + chrono::Duration::from_std(RETROACTIVE_APPROVAL).unwrap_or_default();
            let d = required(ApprovalDetail {
                emergency: Some(true),
                approve_by: Some(by),
                operator: Some(operator),
                ..Default::default()
            });
            return (d, None);
        }
        if let Some(reason) = &opts.approve {
            let d = required(ApprovalDetail {
                approved_by: Some(operator),
                reason: Some(reason.clone()),
                how: Some("--approve".into()),
                ..Default::default()
            });
            return (d, None);
        }
        if let Some(confirm) = &self.confirm {
            return self.confirmed(confirm, plan, opts, operator);
        }
        let d = required(ApprovalDetail {
            approved: Some(false),
            ..Default::default()
        });
        (
            d,
            Some(
                Refusal::new(format!(
                    "plan {} ({} tier) requires approval and there is no terminal to ask",
                    plan.name(),
                    plan.tier.name
                ))
                .hint("pass --approve \"REASON\" (recorded with your identity), or --emergency to approve retroactively within 4h"),
            ),
        )
    }

    /// Asks the operator on the terminal to confirm the run of `plan`.
    fn confirmed(
        &self,
        confirm: &super::Confirm,
        plan: &Plan,
        opts: &RunOptions,
        operator: Option<String>,
    ) -> GateOutcome<ApprovalDetail> {
        let q = format!(
            "{} of plan {} ({} tier) to {}? Type the plan name to confirm",
            opts.kind,
            plan.name(),
            plan.tier.name,
            opts.target
        );
        let how = Some("interactive confirmation".to_string());
        if confirm(&q) {
            let d = ApprovalDetail {
                required: Some(true),
                approved_by: Some(operator),
                how,
                ..Default::default()
            };
            return (d, None);
        }
        let d = ApprovalDetail {
            required: Some(true),
            how,
            confirmed: Some(false),
            ..Default::default()
        };
        let why = format!("plan {}: the operator did not confirm", plan.name());
        (d, Some(Refusal::new(why)))
    }
}

/// What the RPO gate journals of a copy whose move is a switchover: no
/// data lost by design (so within the RPO), the lag not read, and said so.
fn switchover_reading(source: &dyn RpoSource, target: &str) -> LagReading {
    LagReading {
        resource: source.id().to_string(),
        instance: source.copy(target).unwrap_or_default().to_string(),
        lag_seconds: None,
        latest_lag_seconds: None,
        datapoints: 0,
        read_at: None,
        within_rpo: Some(true),
        reading: SWITCHOVER_READING.into(),
        already_primary: None,
        accepted: true,
        switchover: true,
    }
}

/// How the gate says a switchover's reading.
pub const SWITCHOVER_READING: &str = "switchover: no data loss by design; lag not read";

/// How an approval gate's outcome is journaled: refused, passed by
/// `--emergency` (an override, approved retroactively), or passed.
pub(super) fn decision(refused: &Option<Refusal>, detail: &ApprovalDetail) -> Decision {
    if refused.is_some() {
        Decision::Refuse
    } else if detail.emergency == Some(true) {
        Decision::Override
    } else {
        Decision::Pass
    }
}

/// How an RPO gate's outcome is journaled: refused, passed only because
/// the loss was accepted or nothing is promoted (an override), or passed.
fn rpo_decision(refused: &Option<Refusal>, detail: &RpoDetail) -> Decision {
    if refused.is_some() {
        Decision::Refuse
    } else if detail
        .databases()
        .iter()
        .any(|x| x.within_rpo != Some(true))
    {
        Decision::Override
    } else {
        Decision::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lag: Option<f64>, accepted: Option<u64>) -> LagCheck<'static> {
        LagCheck {
            instance: "db-use1",
            region: "us-east-1",
            lag_seconds: lag,
            window: Duration::from_secs(900),
            tier: "critical",
            rpo: Duration::from_secs(300),
            accepted: accepted.map(Duration::from_secs),
            point: None,
        }
    }

    /// A lag too large for a `Duration` (a metric's answer) panicked the
    /// gate in `Duration::from_secs_f64`: it is the largest lag, refused.
    #[test]
    fn regression_a_huge_lag_panicked_the_gate() {
        for lag in [1e300, f64::MAX, f64::INFINITY, f64::NAN] {
            let c = check(Some(lag), Some(3600));
            assert_eq!(c.within_rpo(), Some(false));
            assert!(!c.passes());
            assert!(c.problem("x").is_some_and(|p| p.contains("above")));
        }
        assert!(check(Some(-5.0), None).passes());
    }

    #[test]
    fn a_lag_within_the_rpo_passes_and_says_nothing() {
        assert!(check(Some(3.0), None).passes());
        assert_eq!(check(Some(3.0), None).problem("x"), None);
        assert_eq!(check(Some(3.0), None).within_rpo(), Some(true));
    }

    #[test]
    fn a_lag_above_the_rpo_is_refused_unless_accepted() {
        let c = check(Some(1200.0), None);
        assert!(!c.passes());
        assert_eq!(
            c.problem("x").as_deref(),
            Some(
                "replica lag of db-use1 in us-east-1 is 20m (max over the last 15m), above the critical tier's RPO of 5m"
            )
        );
        assert!(check(Some(1200.0), Some(1800)).passes());
        let short = check(Some(1200.0), Some(600))
            .problem("x")
            .unwrap_or_default();
        assert!(
            short.ends_with(", and above --accept-data-loss 10m"),
            "{short}"
        );
    }

    #[test]
    fn an_unknown_lag_is_never_within_and_needs_acceptance() {
        let c = check(None, None);
        assert_eq!(c.within_rpo(), None);
        assert_eq!(
            c.problem("no datapoints").as_deref(),
            Some("replica lag of db-use1 in us-east-1 is unknown (no datapoints)")
        );
        assert!(check(None, Some(1)).passes());
    }
}
