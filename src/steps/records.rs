//! Records as the DNS steps read, compare and want them, whatever the
//! traffic kind: the record sets a switch wants (through the kind's
//! [`Switching::wanted`], the endpoint of a resource a record follows read
//! first), the plan's records of a step (`records_of`), the zone as
//! preflight found it, and how a set as read is compared with one wanted.
//!
//! Why here: the switch, its verification, a drill's records and a drill's
//! data-plane controls all read and compare records the same way; each
//! step kind takes these from here, never from another step kind, so a
//! change to how a record is compared is made once.

use serde::{Deserialize, Serialize, Serializer};

use super::{Cx, Finding, KindName, StepFailure, StepId, StepOutput, wait_for};
use crate::cloud::{CloudError, DnsRecord, ErrorKind, HostedZone};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{Points, Sent, SwapAt, Switching, Zone, ZoneFound, switching};

/// Serializes a traffic kind's records as their names (how the DNS steps
/// show their records in a graph's JSON).
pub(super) fn record_names<S: Serializer, P: Points>(r: &[P], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|d| d.names().0))
}

/// The records' names, joined for a step's description.
pub(super) fn joined_names<P: Points>(r: &[P]) -> String {
    r.iter().map(|d| d.names().0).collect::<Vec<_>>().join(", ")
}

pub(super) use crate::plan::kinds::traffic::{norm, same_values};

/// The endpoint of resource `db` in the target region: from the journaled
/// outputs of a step on it whose kind names one ([`Traits::endpoint`]:
/// a promotion's, a restore's, a drill's temporary copy), else read from
/// the cloud through the resource's kind
/// ([`crate::plan::kinds::Resource::endpoint`]).
async fn endpoint_of(cx: &Cx<'_>, db: &str) -> Result<String, StepFailure> {
    let journaled = KindName::ALL.iter().find_map(|&kind| {
        let read = kind.traits().endpoint?;
        let id = StepId::new(cx.plan.name(), kind, Some(db.to_string()));
        read(cx.outputs.get(&id.to_string())?)
    });
    if let Some(ep) = journaled {
        return Ok(ep);
    }
    let Some(copies) = cx.plan.spec.resource(db).and_then(|r| r.endpoint()) else {
        return Err(StepFailure::state(
            format!("record follows database {db}, which the plan does not have"),
            "fix `follows` in the plan (drctl plan validate)",
            db,
            cx.target,
        ));
    };
    let id = copies.copy(cx.target).unwrap_or(db);
    let copy = copies.describe(cx.clouds, cx.target).await?;
    copy.and_then(|c| c.endpoint).ok_or_else(|| {
        StepFailure::state(
            format!("database {id} in {} has no endpoint yet", cx.target),
            "wait until it is available, then `drctl runs resume`",
            id,
            cx.target,
        )
    })
}

/// The record sets a zone must hold after a switch of `records` to the
/// target, through their traffic roles (the endpoint of a resource a
/// record follows read first); a record with no value for the target is
/// an error naming it.
pub(super) async fn desired(
    cx: &Cx<'_>,
    records: &[&dyn Switching],
) -> Result<Vec<DnsRecord>, StepFailure> {
    let mut out = Vec::new();
    for d in records {
        let endpoint = match d.follows() {
            Some(db) => Some(endpoint_of(cx, db).await?),
            None => None,
        };
        out.extend(d.wanted(cx.plan, cx.target, endpoint.as_deref()));
    }
    no_value(&out, cx.target)?;
    Ok(out)
}

/// A record with no value for the target fails every step that would
/// write it (a switch, a drill's copy, and their previews), naming it: an
/// empty record set is never sent.
pub(super) fn no_value(want: &[DnsRecord], target: &str) -> Result<(), StepFailure> {
    match (want.iter()).find(|w| w.values.is_empty() && w.routing.is_none()) {
        Some(w) => Err(StepFailure::state(
            format!("record {} {} has no value for {target}", w.name, w.rtype),
            "give it a target for the region in the plan (drctl plan validate)",
            &w.name,
            target,
        )),
        None => Ok(()),
    }
}

/// The hosted zone `name`, or a failure naming it.
pub(super) async fn zone(cx: &Cx<'_>, name: &str) -> Result<HostedZone, StepFailure> {
    cx.clouds.dns.find_zone(name).await?.ok_or_else(|| {
        StepFailure::state(
            format!("hosted zone {name} does not exist"),
            "create it (terraform/dns.tf) or fix the zone in the plan",
            name,
            "global",
        )
    })
}

/// The compare-and-swaps that bring the records `cur` (as read, in the
/// order of `want`) to `want`: nothing for a record already right.
pub(super) fn swaps(
    want: &[DnsRecord],
    cur: &[Option<DnsRecord>],
) -> Vec<(Option<DnsRecord>, DnsRecord)> {
    want.iter()
        .zip(cur)
        .filter(|(w, c)| !matches(c, w))
        .map(|(w, c)| (c.clone(), w.clone()))
        .collect()
}

/// Sends `swapped` as zone `z`'s one change, fenced first: a failover's
/// switch through the run's queue (`queued`: several plans' changes to one
/// Route 53 zone go together), a drill's records alone.
pub(super) async fn send(
    cx: &Cx<'_>,
    (z, found): (Zone<'_>, &ZoneFound),
    swapped: &[(Option<DnsRecord>, DnsRecord)],
    queued: bool,
) -> Result<Sent, StepFailure> {
    let call = z.api.calls().switch.last().copied().unwrap_or_default();
    cx.fenced(&format!("{call} in {}", found.dns_name), "global")
        .await?;
    let what = if queued { "run" } else { "drill" };
    let (run, plan, target) = (cx.run_id, cx.plan.name(), cx.target);
    let comment = format!("drctl {what} {run}: {plan} to {target}");
    let at = SwapAt {
        clouds: cx.clouds,
        zone: z,
        found,
        plan,
        comment: &comment,
        queue: cx.zone_batches.as_deref().filter(|_| queued),
    };
    Ok(z.api.swap(at, swapped).await)
}

/// Waits, at the run's pace, until each of zone `z`'s changes `ids` is in
/// effect.
pub(super) async fn await_changes(
    cx: &Cx<'_>,
    z: Zone<'_>,
    ids: &[String],
) -> Result<(), StepFailure> {
    for id in ids {
        let waiting = format!(
            "{} change {id} in {} to be in effect",
            z.api.provider(),
            z.subject()
        );
        wait_for(cx, &waiting, || async {
            Ok(z.api.in_effect(cx.clouds, z, id).await?.then_some(()))
        })
        .await?;
    }
    Ok(())
}

/// The records read back that are not as wanted, each said with what it
/// holds and what was expected (none: all as wanted).
pub(super) fn mismatches(want: &[DnsRecord], cur: &[Option<DnsRecord>]) -> Vec<String> {
    (want.iter().zip(cur))
        .filter(|(w, c)| !matches(c, w))
        .map(|(w, c)| {
            format!(
                "{} is {} (expected {})",
                w.name,
                show(c),
                show(&Some(w.clone()))
            )
        })
        .collect()
}

/// Whether the record as read is the one wanted (values, weight, TTL).
pub(super) fn matches(cur: &Option<DnsRecord>, want: &DnsRecord) -> bool {
    cur.as_ref().is_some_and(|c| {
        same_values(&c.values, &want.values) && c.weight == want.weight && c.ttl == want.ttl
    })
}

/// A record as a finding shows it.
pub(super) fn show(r: &Option<DnsRecord>) -> String {
    match r {
        None => "absent".into(),
        Some(r) => {
            let w = r.weight.map(|w| format!(" weight {w}")).unwrap_or_default();
            format!(
                "{}{w} ttl {}",
                r.values.join(","),
                r.ttl.unwrap_or_default()
            )
        }
    }
}

/// The records `ids` of `plan` (every one: a record the plan no longer
/// has fails the step, naming it).
pub(super) fn records_of<'p>(
    plan: &'p Plan,
    ids: &[String],
    zone: &str,
) -> Result<Vec<&'p dyn Switching>, StepFailure> {
    let gone = |what: String, id: &str| {
        StepFailure::state(what, "run the plan this run was started with", id, "global")
    };
    match picked(switching(plan), ids) {
        Err(id) => Err(gone(
            format!("the plan has no records-mode record `{id}` in {zone}"),
            &id,
        )),
        Ok(found) if found.is_empty() => Err(gone(format!("no records to switch in {zone}"), zone)),
        Ok(found) => Ok(found),
    }
}

/// The records among `all` whose ids are `ids`, in `all`'s order (the
/// plan's), whatever the role they are read through; `Err` names the first
/// id none of them has.
pub(super) fn picked<'p, T: Points + ?Sized>(
    all: impl Iterator<Item = &'p T>,
    ids: &[String],
) -> Result<Vec<&'p T>, String> {
    let found: Vec<&T> = all.filter(|d| ids.iter().any(|r| r == d.id())).collect();
    match (ids.iter()).find(|r| !found.iter().any(|d| d.id() == r.as_str())) {
        Some(gone) => Err(gone.clone()),
        None => Ok(found),
    }
}

/// What preflight says of a zone: found (its facts kept for the switch),
/// missing, or not read (an API that does not answer blocks: records mode
/// cannot move traffic without it).
pub(super) async fn zone_finding(cx: &Cx<'_>, z: Zone<'_>) -> Finding {
    let what = format!("zone {}", z.subject());
    match z.api.find(cx.clouds, z).await {
        Ok(Some(f)) => zone_found(z, &f),
        Ok(None) => Finding::missing(&what, "global"),
        Err(e) if e.kind.is_transient() => Finding::blocks(
            &what,
            "global",
            format!("unreachable ({})", e.kind.as_str()),
            z.api.api_down(),
        ),
        Err(e) => Finding::unreadable(&what, "global", &e),
    }
}

/// Preflight's finding of a zone found (its facts kept for the switch).
pub(super) fn zone_found(z: Zone<'_>, f: &ZoneFound) -> Finding {
    Finding::ok(
        format!("zone {}", z.subject()),
        "global",
        format!("zone {}", f.handle),
    )
    .with_facts(f)
}

/// The zone as preflight found it moments ago, else found now.
pub(super) async fn zone_now(cx: &Cx<'_>, z: Zone<'_>) -> Result<ZoneFound, StepFailure> {
    let subject = z.subject();
    if let Some(f) = cx.preflight_facts::<ZoneFound>(&format!("zone {subject}")) {
        return Ok(f);
    }
    z.api.find(cx.clouds, z).await?.ok_or_else(|| {
        StepFailure::state(
            format!("{} zone {subject} does not exist", z.api.provider()),
            "create it (terraform/dns.tf) or fix the zone in the plan",
            &subject,
            "global",
        )
    })
}

/// A Route 53 hosted zone as the traffic role names it (a drill's records
/// are Route 53's).
pub(super) fn route53(name: &str) -> Zone<'_> {
    Zone {
        api: &crate::plan::kinds::route53_switching::Route53Zones,
        project: "",
        name,
    }
}

/// Whether a count is zero (serde: left out of an output when it is).
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a zone's switch publishes (`switch-dns`'s output; `verify-dns`
/// waits on its changes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchDnsOutput {
    /// The zone's name.
    pub zone: String,
    /// The zone's id.
    pub zone_id: String,
    /// The change batches submitted (none: already switched).
    pub change_ids: Vec<String>,
    /// Whether every batch was INSYNC in its own answer.
    pub in_sync: bool,
    /// Batches whose answer was lost on the way back: Route 53 refused
    /// their resend because the first send had taken effect, and the
    /// records read back as switched (no change id to wait on for these).
    #[serde(skip_serializing_if = "is_zero")]
    pub answers_lost: usize,
    /// How many records were changed.
    pub changed: usize,
    /// The records as they were, in the order of `after`.
    pub before: Vec<Option<DnsRecord>>,
    /// The records as switched.
    pub after: Vec<DnsRecord>,
    /// When the batches were submitted.
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    /// The zone's changes found pending when nothing needed changing, or
    /// when this run's own change has no id (its answer lost, or sent by an
    /// earlier attempt): its change may still be on its way, and
    /// `verify-dns` waits on them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// This run's change may be on its way with no id the provider can be
    /// asked about (sent by an earlier attempt, or its answer lost) where
    /// the provider cannot list a zone's changes (Route 53): `verify-dns`
    /// reads the records back, but cannot see the change in effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

impl StepOutput for SwitchDnsOutput {
    const KIND: KindName = KindName::SwitchDns;
}

/// What a refused or unanswered change was, judged from the sets it swaps
/// (as read, wanted) and the same sets read again after it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Refusal {
    /// Every set already is as wanted: the change is in effect. A change
    /// is applied whole, so this is this run's own earlier send, whose
    /// answer was lost (the adapter sent it again, and the resend's
    /// DELETE no longer matched).
    AlreadyAsWanted,
    /// The set at this index is neither as read nor as wanted: another
    /// writer moved it.
    Changed(usize),
    /// Nothing moved but to what was wanted: the provider refused for a
    /// reason of its own (its error stands).
    Provider,
}

/// Judges a refusal (pure: the reads are the caller's). A set as wanted is
/// this run's (a change of several batches may have landed in part).
pub(super) fn judge_refusal(
    swapped: &[(Option<DnsRecord>, DnsRecord)],
    now: &[Option<DnsRecord>],
) -> Refusal {
    if !swapped.is_empty()
        && swapped.len() == now.len()
        && swapped.iter().zip(now).all(|((_, w), n)| matches(n, w))
    {
        return Refusal::AlreadyAsWanted;
    }
    let moved = swapped
        .iter()
        .zip(now)
        .position(|((was, w), n)| !matches(n, w) && was != n);
    match moved {
        Some(i) => Refusal::Changed(i),
        None => Refusal::Provider,
    }
}

/// After the provider refused the swaps with `e` (or no answer came, every
/// try): reads the swapped sets again (only now that the change failed)
/// and judges ([`judge_refusal`]). `Ok` when they already are as wanted
/// (this run's own send whose answer was lost: said in the log, counted
/// in the step's output); otherwise the step's failure: another writer
/// moved a set (a refusal), or the provider's own error.
pub(super) async fn after_refusal(
    clouds: &crate::cloud::Clouds,
    (z, found): (Zone<'_>, &ZoneFound),
    swapped: &[(Option<DnsRecord>, DnsRecord)],
    e: CloudError,
) -> Result<(), StepFailure> {
    // Not sent at all: the lease is lost, whatever the records say now
    // (the taker may have switched them already).
    if e.kind == ErrorKind::Fenced {
        return Err(e.into());
    }
    let wants: Vec<DnsRecord> = swapped.iter().map(|(_, w)| w.clone()).collect();
    let Ok(now) = z.api.read(clouds, z, found, &wants).await else {
        return Err(e.into());
    };
    match judge_refusal(swapped, &now) {
        Refusal::AlreadyAsWanted => {
            tracing::warn!(
                zone = %found.dns_name,
                "a change of {} record set(s) failed ({}), but every set already is as wanted: this run's own send took effect and its answer was lost (a resend is refused); the switch is done",
                swapped.len(),
                e.message
            );
            Ok(())
        }
        // Without a refusal (no answer, a busy zone), nothing says that
        // the change was judged against a newer value.
        Refusal::Changed(_) | Refusal::Provider if !z.api.refused(&e) => Err(e.into()),
        Refusal::Changed(i) => {
            let (was, w) = &swapped[i];
            Err(StepFailure::state(
                format!(
                    "record {} {} in zone {} changed since it was read (read {}, now {}): another run or someone else switched it; nothing was overwritten",
                    w.name,
                    w.rtype,
                    z.subject(),
                    show(was),
                    show(&now[i])
                ),
                format!(
                    "nothing was changed by this change ({} applies a change whole or not at all); {}; check who holds the plan (drctl lock status), then resume (the step reads first)",
                    z.api.provider(),
                    z.api.look(z, &w.name, &w.rtype)
                ),
                &w.name,
                "global",
            ))
        }
        // A protection refuses a change whole, whoever sends it: named,
        // with how to lift it, not as the provider's bare refusal.
        Refusal::Provider => {
            use crate::plan::kinds::traffic;
            match traffic::holding(clouds, (z, found), &wants).await {
                Ok(held) if !held.is_empty() => {
                    let (whys, hows): (Vec<String>, Vec<String>) =
                        (held.iter()).map(|p| traffic::held(z, found, p)).unzip();
                    let names: Vec<&str> = held.iter().map(|p| p.name.as_str()).collect();
                    Err(StepFailure::state(
                        format!("{} ({})", whys.join("; "), e.summary()),
                        format!(
                            "nothing was changed; {}; then resume (the step reads first)",
                            hows.join("; ")
                        ),
                        &names.join(", "),
                        "global",
                    ))
                }
                Ok(_) => Err(e.into()),
                // Said beside the provider's own refusal, which stands.
                Err(unread) => {
                    tracing::warn!(
                        zone = %found.dns_name,
                        "the change was refused ({}); whether a record-set protection holds it could not be read: {}",
                        e.summary(),
                        unread.summary()
                    );
                    Err(e.into())
                }
            }
        }
    }
}

/// Sends the swaps as the zone's one change (fenced first), through the
/// run's queue where it has one. A change refused or unanswered is judged
/// by a read ([`after_refusal`]): `Ok` with the error kept when it was this
/// run's own change whose answer was lost, else the step's failure.
pub(super) async fn submit_swaps(
    cx: &Cx<'_>,
    (z, found): (Zone<'_>, &ZoneFound),
    swapped: &[(Option<DnsRecord>, DnsRecord)],
) -> Result<Sent, StepFailure> {
    let mut sent = send(cx, (z, found), swapped, true).await?;
    if let Some(e) = sent.error.take() {
        after_refusal(cx.clouds, (z, found), swapped, e.clone()).await?;
        sent.in_effect = false;
        sent.error = Some(e);
    }
    Ok(sent)
}
