//! Route 53 records as the DNS steps read, compare and want them: the
//! records a switch wants (a target's value, a weighted set, the endpoint
//! of the database a record follows), the zone, the records as they are,
//! and how two are compared.
//!
//! Why here: the switch, its verification, a drill's records, a drill's and
//! a failover's data-plane controls and `dns prepare` all read and compare
//! records the same way; each step kind takes these from here, never from
//! another step kind, so a change to how a record is compared is made once.

use serde::{Deserialize, Serialize, Serializer};

use super::{Cx, Finding, KindName, StepFailure, StepId, StepOutput};
use crate::cloud::{CloudError, Dns, DnsRecord, HostedZone};
use crate::plan::kinds::traffic::Points;
use crate::plan::spec::{DnsSpec, SwitchMode};

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

/// The records a zone must hold after the switch.
pub(super) async fn desired(
    cx: &Cx<'_>,
    records: &[DnsSpec],
) -> Result<Vec<DnsRecord>, StepFailure> {
    let mut out = Vec::new();
    for d in records {
        let name = if d.name.ends_with('.') {
            d.name.clone()
        } else {
            format!("{}.", d.name)
        };
        match (&d.follows, d.switch) {
            (Some(db), _) => out.push(DnsRecord::simple(
                name,
                &d.rtype,
                Some(d.ttl),
                vec![endpoint_of(cx, db).await?],
            )),
            // A data-plane record is switched by its controls; where a plain
            // record of it is wanted (a drill's), it is the target's value.
            (None, SwitchMode::Upsert | SwitchMode::HealthCheck) => out.push(DnsRecord::simple(
                name,
                &d.rtype,
                Some(d.ttl),
                vec![d.targets[cx.target].clone()],
            )),
            (None, SwitchMode::Weighted) => {
                for region in cx.plan.regions() {
                    out.push(DnsRecord {
                        name: name.clone(),
                        rtype: d.rtype.clone(),
                        ttl: Some(d.ttl),
                        values: vec![d.targets[region].clone()],
                        set_identifier: Some(region.clone()),
                        weight: Some(if region == cx.target { 100 } else { 0 }),
                        routing: None,
                    });
                }
            }
        }
    }
    Ok(out)
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

/// Current record for each desired one (matched by name, type and set
/// identifier), read in one request where the zone allows.
pub(super) async fn current(
    cx: &Cx<'_>,
    z: &HostedZone,
    want: &[DnsRecord],
) -> Result<Vec<Option<DnsRecord>>, StepFailure> {
    Ok(current_in(cx.clouds.dns.as_ref(), z, want).await?)
}

/// [`current`] from `dns`.
pub(super) async fn current_in(
    dns: &dyn Dns,
    z: &HostedZone,
    want: &[DnsRecord],
) -> Result<Vec<Option<DnsRecord>>, CloudError> {
    let mut keys: Vec<(String, String)> = want
        .iter()
        .map(|w| (w.name.clone(), w.rtype.clone()))
        .collect();
    keys.dedup();
    let found = dns.read_many(z, &keys).await?;
    Ok(want
        .iter()
        .map(|w| {
            found
                .iter()
                .find(|r| {
                    norm(&r.name) == norm(&w.name)
                        && r.rtype.eq_ignore_ascii_case(&w.rtype)
                        && r.set_identifier == w.set_identifier
                })
                .cloned()
        })
        .collect())
}

/// The zone as preflight found it moments ago, else read now.
pub(super) async fn zone_now(cx: &Cx<'_>, name: &str) -> Result<HostedZone, StepFailure> {
    if let Some(z) = cx.preflight_facts::<HostedZone>(&format!("zone {name}")) {
        return Ok(z);
    }
    zone(cx, name).await
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

/// The zone exists (Route 53 is global: read even when a region is down).
pub(super) async fn zone_finding(cx: &Cx<'_>, name: &str) -> Finding {
    let what = format!("zone {name}");
    match cx.clouds.dns.find_zone(name).await {
        Ok(Some(z)) => Finding::ok(&what, "global", format!("zone {}", z.id)).with_facts(&z),
        Ok(None) => Finding::missing(&what, "global"),
        Err(e) if e.kind.is_transient() => Finding::blocks(
            &what,
            "global",
            format!("unreachable ({})", e.kind.as_str()),
            ROUTE53_API_DOWN,
        ),
        Err(e) => Finding::unreadable(&what, "global", &e),
    }
}

/// Why records mode cannot move traffic when Route 53's API does not answer,
/// and what does.
pub const ROUTE53_API_DOWN: &str = "Route 53's API does not answer (its control plane, hosted in us-east-1 alone): records mode (switch = \"upsert\" or \"weighted\") cannot move traffic, so nothing was changed; a data-plane switch (switch = \"health-check\", docs/failover.md) moves traffic without that API";

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
}

impl StepOutput for SwitchDnsOutput {
    const KIND: KindName = KindName::SwitchDns;
}
