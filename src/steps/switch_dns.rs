//! `switch-dns`: move a plan's records in one hosted zone to the target
//! region in one atomic change batch (`verify-dns` then waits for INSYNC and
//! reads them back).
//!
//! One batch per zone means clients never see half a switch (the API record
//! moved, the database record not). Route 53 counts an UPSERT twice toward its
//! 1,000-record batch limit, so batches are split at 500 changes.
//!
//! In `upsert` and `weighted` mode each record change is a compare-and-swap:
//! the batch DELETEs exactly the set the step read (values, TTL, weight) and
//! CREATEs the new one. A batch is all-or-nothing, so a writer whose read is
//! stale (a process that slept through its lease, then woke) is refused by
//! Route 53 instead of overwriting a newer run's decision (see
//! [`swap_refused`]). The pair counts two records, like an UPSERT, and is
//! never split across batches.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dns_batch::{batches, swap_pair};
use super::drill_database::DrillDatabaseOutput;
use super::promote::PromoteOutput;
use super::restore::RestoreOutput;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::{DnsChange, DnsRecord, HostedZone};
use crate::plan::spec::{DnsSpec, SwitchMode};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Switch every record of the plan in one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchDns {
    /// Zone name.
    pub zone: String,
    /// Target region.
    pub region: String,
    /// The records switched (the plan's entries).
    #[serde(serialize_with = "record_names")]
    pub records: Vec<DnsSpec>,
}

/// Serializes DNS records as their names (how the steps of the DNS kind
/// show their records in a graph's JSON).
pub(super) fn record_names<S: serde::Serializer>(r: &[DnsSpec], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|d| &d.name))
}

/// The records' names, joined for a step's description.
pub(super) fn joined_names(r: &[DnsSpec]) -> String {
    r.iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl SwitchDns {
    /// The names of the records switched.
    pub fn names(&self) -> Vec<&str> {
        self.records.iter().map(|d| d.name.as_str()).collect()
    }
}

/// Part of the recovery: traffic moves here.
pub const TRAITS: Traits = Traits {
    recovery: true,
    ends_rto: false,
    irreversible: false,
    rpo: None,
    time: Cost {
        calls: &[
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "route53:ChangeResourceRecordSets",
        ],
        waits: &[],
        polls: None,
    },
};

/// One switch per hosted zone: every record in a failover, the records that
/// follow the restored database in a restore, none in a reprotection.
pub fn compile(b: &mut Builder<'_>) {
    let keep = |d: &DnsSpec| match b.mode {
        _ if !d.switch.needs_route53_api() => false,
        m if m.fails_over() => true,
        RunMode::Restore { database, .. } => d.follows.as_deref() == Some(database.as_str()),
        RunMode::Failover | RunMode::Reprotect | RunMode::Drill { .. } => false,
    };
    let mut zones: BTreeMap<String, Vec<DnsSpec>> = BTreeMap::new();
    for d in b.plan.spec.dns.iter().filter(|d| keep(d)) {
        zones
            .entry(d.zone.to_ascii_lowercase())
            .or_default()
            .push(d.clone());
    }
    let target = b.target.to_string();
    for (zone, records) in zones {
        let changes: Vec<String> = records
            .iter()
            .map(|d| match (&d.follows, d.switch) {
                (Some(db), _) => format!("{} → endpoint of {db} in {target}", d.name),
                (None, SwitchMode::Upsert | SwitchMode::HealthCheck) => {
                    format!("{} → {}", d.name, d.targets[&target])
                }
                (None, SwitchMode::Weighted) => {
                    format!("{} weights: {target}=100, others 0", d.name)
                }
            })
            .collect();
        let resources = records.iter().map(|d| d.id.clone()).collect();
        let description = format!("one change batch in {zone}: {}", changes.join("; "));
        b.add(
            StepKind::SwitchDns(SwitchDns {
                zone: zone.clone(),
                region: target.clone(),
                records,
            }),
            Some(zone),
            Phase::of(crate::plan::spec::ResourceKind::Dns),
            resources,
            description,
        );
    }
}

/// A DNS value as compared: no trailing dot, lower case.
pub(super) fn norm(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether two record sets hold the same values, in any order and spelling.
pub(super) fn same_values(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<String> = a.iter().map(|v| norm(v)).collect();
    let mut b: Vec<String> = b.iter().map(|v| norm(v)).collect();
    a.sort();
    b.sort();
    a == b
}

/// The endpoint of database resource `db` in the target region: from the
/// promote/restore step's journaled outputs (a drill's: its temporary
/// database), else read from the cloud.
async fn endpoint_of(cx: &Cx<'_>, db: &str) -> Result<String, StepFailure> {
    let journaled = cx
        .output_of::<PromoteOutput>(Some(db))
        .and_then(|o| o.endpoint)
        .or_else(|| cx.output_of::<RestoreOutput>(Some(db))?.endpoint)
        .or_else(|| cx.output_of::<DrillDatabaseOutput>(Some(db))?.endpoint);
    if let Some(ep) = journaled {
        return Ok(ep);
    }
    let Some(spec) = cx.plan.spec.database(db) else {
        return Err(StepFailure::state(
            format!("record follows database {db}, which the plan does not have"),
            "fix `follows` in the plan (drctl plan validate)",
            db,
            cx.target,
        ));
    };
    let id = &spec.regions[cx.target];
    let inst = cx.clouds.database.describe_instance(cx.target, id).await?;
    inst.and_then(|i| i.endpoint).ok_or_else(|| {
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
    let mut keys: Vec<(String, String)> = want
        .iter()
        .map(|w| (w.name.clone(), w.rtype.clone()))
        .collect();
    keys.dedup();
    let found = cx.clouds.dns.read_many(z, &keys).await?;
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
async fn zone_now(cx: &Cx<'_>, name: &str) -> Result<HostedZone, StepFailure> {
    if let Some(z) = cx.preflight_facts::<HostedZone>(&format!("zone {name}")) {
        return Ok(z);
    }
    zone(cx, name).await
}

pub(super) fn matches(cur: &Option<DnsRecord>, want: &DnsRecord) -> bool {
    cur.as_ref().is_some_and(|c| {
        same_values(&c.values, &want.values) && c.weight == want.weight && c.ttl == want.ttl
    })
}

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

/// The compare-and-swap changes that bring the records `cur` (as read, in
/// the order of `want`) to `want`: nothing for a record already right.
pub(super) fn swaps(want: &[DnsRecord], cur: &[Option<DnsRecord>]) -> Vec<DnsChange> {
    want.iter()
        .zip(cur)
        .filter(|(w, c)| !matches(c, w))
        .flat_map(|(w, c)| DnsChange::swap(c.as_ref(), w))
        .collect()
}

/// Submits the swaps in as few batches as the limit allows, each after a
/// check of the run's lease; returns the change ids and whether every batch
/// was INSYNC in its answer. A batch refused because a record changed since
/// it was read fails the step saying so ([`swap_refused`]).
pub(super) async fn submit_swaps(
    cx: &Cx<'_>,
    z: &HostedZone,
    changes: &[DnsChange],
) -> Result<(Vec<String>, bool), StepFailure> {
    let comment = format!(
        "drctl run {}: {} to {}",
        cx.run_id,
        cx.plan.name(),
        cx.target
    );
    let mut change_ids = Vec::new();
    let mut in_sync = true;
    if let Some(queues) = cx.zone_batches.as_ref().filter(|_| !changes.is_empty()) {
        cx.fenced(
            &format!("route53:ChangeResourceRecordSets in {}", z.name),
            "global",
        )
        .await?;
        let group = super::dns_batch::Group {
            plan: cx.plan.name().to_string(),
            changes: changes.to_vec(),
        };
        let carried = match queues
            .submit(cx.clouds.dns.as_ref(), z, group, &comment)
            .await
        {
            Ok(c) => c,
            Err(e) => return Err(swap_refused(cx, z, changes, e).await),
        };
        if carried.plans.len() > 1 {
            tracing::info!(
                zone = %z.name,
                change = %carried.change_id,
                "one batch for {} plans: {}",
                carried.plans.len(),
                carried.plans.join(", ")
            );
        }
        return Ok((vec![carried.change_id], carried.in_sync));
    }
    for batch in batches(changes) {
        cx.fenced(
            &format!("route53:ChangeResourceRecordSets in {}", z.name),
            "global",
        )
        .await?;
        let info = match cx.clouds.dns.apply_changes(z, batch, &comment).await {
            Ok(info) => info,
            Err(e) => return Err(swap_refused(cx, z, batch, e).await),
        };
        in_sync &= info.in_sync;
        change_ids.push(info.id);
    }
    Ok((change_ids, in_sync))
}

/// Why a swap batch was refused: when a record it swaps is no longer what
/// was read (read again, only now that the batch failed), another run
/// changed it and the step says so; otherwise the provider's own error.
async fn swap_refused(
    cx: &Cx<'_>,
    z: &HostedZone,
    batch: &[DnsChange],
    e: crate::cloud::CloudError,
) -> StepFailure {
    if e.kind != crate::cloud::ErrorKind::Client {
        return e.into();
    }
    // What each swapped set was when read: the DELETE's record, or absent
    // before a lone CREATE.
    let mut read: Vec<(DnsRecord, Option<DnsRecord>)> = Vec::new();
    for (i, c) in batch.iter().enumerate() {
        match c {
            DnsChange::Create(w) if i > 0 && swap_pair(&batch[i - 1..]) => {
                if let DnsChange::Delete(d) = &batch[i - 1] {
                    read.push((w.clone(), Some(d.clone())));
                }
            }
            DnsChange::Create(w) => read.push((w.clone(), None)),
            _ => {}
        }
    }
    let wants: Vec<DnsRecord> = read.iter().map(|(w, _)| w.clone()).collect();
    let Ok(now) = current(cx, z, &wants).await else {
        return e.into();
    };
    match read.iter().zip(&now).find(|((_, was), now)| *was != **now) {
        Some(((w, _), now)) => StepFailure::state(
            format!(
                "record {} {} changed since it was read (now {}): another run switched it; re-read with drctl status",
                w.name,
                w.rtype,
                show(now)
            ),
            "nothing was changed by this batch (Route 53 applies a batch whole or not at all); check who holds the plan (drctl lock status) before running again",
            &w.name,
            "global",
        ),
        None => e.into(),
    }
}

/// What a zone's switch publishes (verify-dns waits on its changes).
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
    /// How many records were changed.
    pub changed: usize,
    /// The records as they were, in the order of `after`.
    pub before: Vec<Option<DnsRecord>>,
    /// The records as switched.
    pub after: Vec<DnsRecord>,
    /// When the batches were submitted.
    pub submitted_at: DateTime<Utc>,
}

impl StepOutput for SwitchDnsOutput {
    const KIND: KindName = KindName::SwitchDns;
}

#[async_trait]
impl Action for SwitchDns {
    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads this kind's resources itself, in more detail.
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        vec![zone_finding(cx, &self.zone).await]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let z = zone_now(cx, &self.zone).await?;
        let want = desired(cx, &self.records).await?;
        let cur = current(cx, &z, &want).await?;
        Ok(want
            .iter()
            .zip(&cur)
            .map(|(w, c)| Planned {
                call: "route53:ChangeResourceRecordSets DELETE+CREATE (compare-and-swap, one batch for the zone)".into(),
                resource: format!(
                    "{} {}{}",
                    w.name,
                    w.rtype,
                    w.set_identifier
                        .as_ref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default()
                ),
                region: "global".into(),
                current: show(c),
                desired: show(&Some(w.clone())),
                change: !matches(c, w),
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let z = zone_now(cx, &self.zone).await?;
        let want = desired(cx, &self.records).await?;
        let cur = current(cx, &z, &want).await?;
        let changes = swaps(&want, &cur);
        let (change_ids, in_sync) = submit_swaps(cx, &z, &changes).await?;
        if changes.is_empty() {
            tracing::info!(zone = %self.zone, "records already point at {}", cx.target);
        }
        let changed = want
            .iter()
            .zip(&cur)
            .filter(|(w, c)| !matches(c, w))
            .count();
        SwitchDnsOutput {
            zone: z.name,
            zone_id: z.id,
            change_ids,
            in_sync,
            changed,
            before: cur,
            after: want,
            submitted_at: Utc::now(),
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(i: usize) -> DnsChange {
        DnsChange::Upsert(DnsRecord::simple(
            format!("r{i}.example.com."),
            "CNAME",
            Some(60),
            vec!["x.example.com.".into()],
        ))
    }

    #[test]
    fn upserts_split_into_batches_of_at_most_1000_counted_records() {
        let sizes = |n: usize| -> Vec<usize> {
            let changes: Vec<DnsChange> = (0..n).map(upsert).collect();
            batches(&changes).map(<[DnsChange]>::len).collect()
        };
        assert_eq!(sizes(2), [2]);
        assert_eq!(sizes(500), [500]);
        assert_eq!(sizes(501), [500, 1]);
        assert_eq!(sizes(1001), [500, 500, 1]);
        assert!(sizes(0).is_empty());
    }
}
