//! `verify-dns`: wait until the zone's change is in effect (Route 53's
//! INSYNC, Cloud DNS's `done`), then read the records back and fail unless
//! they are what `switch-dns` set, whatever the zone's kind (through the
//! traffic role's [`ZoneApi`](crate::plan::kinds::traffic::ZoneApi)).
//!
//! A step of its own (not the tail of `switch-dns`) so that the journal tells
//! "submitted" from "in effect": a crash between the two resumes by waiting,
//! not by submitting again, and the RTO clock stops at the read-back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::{
    SwitchDnsOutput, await_changes, desired, mismatches, records_of, swaps, zone_now,
};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::DnsRecord;
use crate::plan::kinds::traffic::{ZoneCalls, ZoneFound};
use crate::steps::graph::{Builder, Phase};

/// Wait for the switch to be in effect and read it back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyDns {
    /// The zone, as its switch names it.
    pub zone: String,
    /// The records switched (their plan ids: read back against the same
    /// desired state).
    #[serde(skip)]
    pub ids: Vec<String>,
    /// The zone kind's calls (the step's cost).
    #[serde(skip)]
    pub calls: ZoneCalls,
}

/// Stops the RTO clock: traffic is in the target once this reads back
/// (its calls are its zone kind's: [`VerifyDns::cost`]).
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::IN_EFFECT),
    converges: true,
    rto_caveat: Some(caveat),
    ..Traits::RECOVERY
};

/// [`UNCONFIRMED`](super::traits::UNCONFIRMED) where the outputs say so.
fn caveat(out: &Value) -> Option<&'static str> {
    (VerifyDnsOutput::read(out)?.unconfirmed).then_some(super::traits::UNCONFIRMED)
}

impl VerifyDns {
    /// What it costs: the wait until the change is in effect, polled, and
    /// the read-back.
    pub fn cost(&self) -> Cost {
        Cost {
            calls: self.calls.verify,
            waits: self.calls.waits,
            polls: Some(self.calls.poll),
        }
    }
}

/// One verification per switch.
pub fn compile(b: &mut Builder<'_>) {
    let switches: Vec<(String, Vec<String>, ZoneCalls, Vec<String>)> = b
        .steps()
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::SwitchDns(sw) => Some((
                sw.zone.clone(),
                sw.ids.clone(),
                sw.calls,
                s.resources.clone(),
            )),
            _ => None,
        })
        .collect();
    for (zone, ids, calls, resources) in switches {
        let description =
            format!("wait until the change in {zone} is in effect and read the records back");
        b.add(
            StepKind::VerifyDns(VerifyDns {
                zone: zone.clone(),
                ids,
                calls,
            }),
            Some(zone),
            Phase::Verify,
            resources,
            description,
        );
    }
}

/// What a zone's verification publishes: when the change was in effect
/// (the RTO clock stops there) and the records read back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyDnsOutput {
    /// The zone.
    pub zone: String,
    /// The changes waited for.
    pub change_ids: Vec<String>,
    /// When they were in effect.
    pub in_sync_at: DateTime<Utc>,
    /// The records read back.
    pub records: Vec<Option<DnsRecord>>,
    /// The switch's own change had no id to wait on and the provider
    /// cannot list a zone's changes: in effect is not seen, only read back
    /// (`SwitchDnsOutput::unconfirmed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
    /// The switch's changes that stayed pending past [`STRANDED_AFTER`]
    /// (stranded by a failover of Route 53's control plane, as accelerated
    /// recovery may leave one): given up on, the records read again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stranded: Vec<String>,
    /// The change that sent the records again, once, because a stranded
    /// change had not switched them: the resend, waited on and read back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resent: Vec<String>,
}

/// How long a change may stay pending before it is taken for stranded: a
/// change is in effect within about 60 s on Route 53; one accepted just
/// before its control plane failed over (to its accelerated-recovery copy)
/// may never be, and must be sent again (Route 53 Developer Guide,
/// "accelerated recovery").
pub const STRANDED_AFTER: std::time::Duration = std::time::Duration::from_secs(180);

impl StepOutput for VerifyDnsOutput {
    const KIND: KindName = KindName::VerifyDns;
}

#[async_trait]
impl Action for VerifyDns {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // The switch step of the same zone reports the zone.
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        // A change that strands is sent again, once: a call this step may
        // make, named as every fallback is.
        let strands = records_of(cx.plan, &self.ids, &self.zone)?[0]
            .zone()
            .api
            .strands();
        let resend = (self.calls.switch.last().filter(|_| strands))
            .map(|c| format!(", only if its change is stranded: {c}"))
            .unwrap_or_default();
        Ok(vec![Planned {
            call: format!(
                "{}, {}{resend}",
                self.calls.poll,
                self.calls.verify.join(", ")
            ),
            resource: self.zone.clone(),
            region: "global".into(),
            current: "-".into(),
            desired: "change in effect, records read back as switched".into(),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let records = records_of(cx.plan, &self.ids, &self.zone)?;
        let z = records[0].zone();
        let switch = cx.output_of::<SwitchDnsOutput>(Some(&self.zone));
        let (sent, pending, in_sync) = switch.as_ref().map_or((&[][..], &[][..], false), |s| {
            (&s.change_ids[..], &s.pending[..], s.in_sync)
        });
        let unconfirmed = switch.as_ref().is_some_and(|s| s.unconfirmed);
        // The records as the switch read them before its change, by the
        // set each was swapped for: a resend swaps only those still so.
        let before: Vec<(DnsRecord, Option<DnsRecord>)> = (switch.as_ref())
            .map(|s| {
                s.after
                    .iter()
                    .cloned()
                    .zip(s.before.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        // In effect in the change's own answer: nothing to poll for it.
        let polled = if in_sync { &[][..] } else { sent };
        let mut ids: Vec<String> = sent.iter().chain(pending).cloned().collect();
        let waited: Vec<String> = polled.iter().chain(pending).cloned().collect();
        // The zone the switch used (ids do not change), else found again.
        let found = match switch.filter(|s| !s.zone_id.is_empty() && !s.zone.is_empty()) {
            Some(s) => ZoneFound {
                handle: s.zone_id,
                dns_name: s.zone,
            },
            None => zone_now(cx, z).await?,
        };
        // A change still pending long past what one takes may be stranded
        // (its provider's control plane failed over): given half of what
        // is left of the step at most, so the resend's own wait fits.
        let left = cx
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        let bound = STRANDED_AFTER.min(left / 2);
        let waiting = tokio::time::timeout(bound, await_changes(cx, z, &waited));
        let (mut stranded, mut resent, mut unconfirmed) = (Vec::new(), Vec::new(), unconfirmed);
        match waiting.await {
            Ok(waited) => waited?,
            // Changes of a provider whose changes do not strand: waited on
            // until the step's deadline.
            Err(_) if !z.api.strands() => await_changes(cx, z, &waited).await?,
            Err(_) => match resend(cx, (z, &found), &records, &before).await {
                // The API does not answer (us-east-1 impaired, no
                // accelerated recovery), or the records read as switched
                // (the change is known, on its way): the changes are waited
                // on until the step's deadline, as before.
                Err(StepFailure::Cloud(e)) if e.is_transient() => {
                    tracing::warn!("{}: not sent again: {e}", z.subject());
                    await_changes(cx, z, &waited).await?;
                }
                Ok(None) => await_changes(cx, z, &waited).await?,
                Err(e) => return Err(e),
                Ok(Some(sent)) => {
                    if !sent.in_effect && !sent.change_ids.is_empty() {
                        await_changes(cx, z, &sent.change_ids).await?;
                    }
                    // Its answer lost: read back, never seen in effect.
                    unconfirmed |= sent.error.is_some() || sent.change_ids.is_empty();
                    (stranded, resent) = (waited.clone(), sent.change_ids);
                    ids.extend(resent.iter().cloned());
                }
            },
        }
        let in_sync_at = Utc::now();
        let want = desired(cx, &records).await?;
        let cur = z.api.read(cx.clouds, z, &found, &want).await?;
        let wrong = mismatches(&want, &cur);
        if !wrong.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "records in {} did not read back as switched: {}",
                    self.zone,
                    wrong.join("; ")
                ),
                "someone else may be changing the zone; inspect it, then `drctl runs resume`",
                &self.zone,
                "global",
            ));
        }
        VerifyDnsOutput {
            zone: self.zone.clone(),
            change_ids: ids,
            in_sync_at,
            records: cur,
            unconfirmed,
            stranded,
            resent,
        }
        .to_output()
    }
}

/// Sends the records again, once, after the switch's changes stayed
/// pending past [`STRANDED_AFTER`] (a provider whose changes strand:
/// [`ZoneApi::strands`](crate::plan::kinds::traffic::ZoneApi::strands)):
/// read first. A record that reads as switched is left alone (`None`: all
/// do, and the change is waited on); one that reads as the switch found it
/// (`before`) is swapped again, as one compare-and-swap change; one that
/// reads otherwise was changed by someone else since, and the step fails
/// as its read-back would, naming it: a resend never overwrites a newer
/// decision. A set the switch would refuse (a routing policy) is refused
/// here too.
///
/// A crash between the resend and the step's end sends again on resume
/// what then still reads as before the switch: each swap deletes the set
/// as read, so a second send after the first took effect is refused by
/// Route 53 and judged by a read, never applied twice.
async fn resend(
    cx: &Cx<'_>,
    (z, found): (crate::plan::kinds::traffic::Zone<'_>, &ZoneFound),
    records: &[&dyn crate::plan::kinds::traffic::Switching],
    before: &[(DnsRecord, Option<DnsRecord>)],
) -> Result<Option<crate::plan::kinds::traffic::Sent>, StepFailure> {
    let want = desired(cx, records).await?;
    let cur = z.api.read(cx.clouds, z, found, &want).await?;
    let same = |a: &DnsRecord, b: &DnsRecord| {
        (a.name.eq_ignore_ascii_case(&b.name) && a.rtype == b.rtype)
            && a.set_identifier == b.set_identifier
    };
    let mut moved = Vec::new();
    for (w, c) in want.iter().zip(&cur) {
        if super::records::matches(c, w) {
            continue;
        }
        let found_before = (before.iter()).find(|(a, _)| same(a, w)).map(|(_, b)| b);
        if let Some(why) = c.as_ref().and_then(|c| z.api.refuses(c)) {
            moved.push(format!("{} {}: {why}", w.name, w.rtype));
        } else if found_before != Some(c) {
            moved.push(format!(
                "{} is {} (the switch found {})",
                w.name,
                super::records::show(c),
                found_before.map_or("nothing".into(), super::records::show)
            ));
        }
    }
    if !moved.is_empty() {
        return Err(StepFailure::state(
            format!(
                "{} change in {} pending past {}s (stranded), and its records changed since the switch read them: {}",
                z.api.provider(),
                z.subject(),
                STRANDED_AFTER.as_secs(),
                moved.join("; ")
            ),
            "someone else changed the zone since the switch: nothing was sent again; inspect it, then `drctl runs resume`",
            &z.subject(),
            "global",
        ));
    }
    let swapped = swaps(&want, &cur);
    let what = format!(
        "{} change in {} pending past {}s (stranded)",
        z.api.provider(),
        z.subject(),
        STRANDED_AFTER.as_secs()
    );
    if swapped.is_empty() {
        tracing::info!("{what}: its records read as switched; waiting on it");
        return Ok(None);
    }
    tracing::warn!(
        "{what}: sending its {} record(s) again, once",
        swapped.len()
    );
    let sent = super::records::submit_swaps(cx, (z, found), &swapped).await?;
    Ok(Some(sent))
}
