//! `switch-dns`: move a plan's records in one hosted zone to the target
//! region in one atomic change batch (`verify-dns` then waits for INSYNC and
//! reads them back).
//!
//! One batch per zone means clients never see half a switch (the API record
//! moved, the database record not). Route 53 counts an UPSERT twice toward its
//! 1,000-record batch limit, so batches are split at 500 changes.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure};
use crate::cloud::{DnsChange, DnsRecord, HostedZone};
use crate::plan::spec::{DnsSpec, SwitchMode};

/// Most UPSERTs in one Route 53 change batch (each counts twice toward 1,000).
pub const MAX_UPSERTS_PER_BATCH: usize = 500;

/// Splits changes into Route 53 change batches: as few as the 1,000-record
/// limit allows (one, for any plan of fewer than 500 records).
pub(super) fn batches(changes: &[DnsChange]) -> std::slice::Chunks<'_, DnsChange> {
    changes.chunks(MAX_UPSERTS_PER_BATCH)
}

/// Switch every record of the plan in one zone.
pub struct SwitchDns {
    /// Zone name.
    pub zone: String,
}

fn norm(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

fn same_values(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<String> = a.iter().map(|v| norm(v)).collect();
    let mut b: Vec<String> = b.iter().map(|v| norm(v)).collect();
    a.sort();
    b.sort();
    a == b
}

fn records_of<'a>(cx: &'a Cx<'_>, zone: &str) -> Vec<&'a DnsSpec> {
    cx.plan
        .spec
        .dns
        .iter()
        .filter(|d| d.zone.eq_ignore_ascii_case(zone))
        .collect()
}

/// The endpoint of database resource `db` in the target region: from the
/// promote/restore step's journaled outputs, else read from the cloud.
async fn endpoint_of(cx: &Cx<'_>, db: &str) -> Result<String, StepFailure> {
    for step in [format!("promote:{db}"), format!("restore:{db}")] {
        if let Some(ep) = cx.output(&step).and_then(|o| o["endpoint"].as_str()) {
            return Ok(ep.to_string());
        }
    }
    let spec = cx
        .plan
        .spec
        .database(db)
        .expect("validated: follows names a database");
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
pub(super) async fn desired(cx: &Cx<'_>, zone: &str) -> Result<Vec<DnsRecord>, StepFailure> {
    let mut out = Vec::new();
    for d in records_of(cx, zone) {
        let name = if d.name.ends_with('.') {
            d.name.clone()
        } else {
            format!("{}.", d.name)
        };
        match (&d.follows, d.switch) {
            (Some(db), _) => out.push(DnsRecord {
                name,
                rtype: d.rtype.clone(),
                ttl: Some(d.ttl),
                values: vec![endpoint_of(cx, db).await?],
                set_identifier: None,
                weight: None,
            }),
            (None, SwitchMode::Upsert) => out.push(DnsRecord {
                name,
                rtype: d.rtype.clone(),
                ttl: Some(d.ttl),
                values: vec![d.targets[cx.target].clone()],
                set_identifier: None,
                weight: None,
            }),
            (None, SwitchMode::Weighted) => {
                for region in cx.plan.regions() {
                    out.push(DnsRecord {
                        name: name.clone(),
                        rtype: d.rtype.clone(),
                        ttl: Some(d.ttl),
                        values: vec![d.targets[region].clone()],
                        set_identifier: Some(region.clone()),
                        weight: Some(if region == cx.target { 100 } else { 0 }),
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

/// Current record for each desired one (matched by name, type and set identifier).
pub(super) async fn current(
    cx: &Cx<'_>,
    z: &HostedZone,
    want: &[DnsRecord],
) -> Result<Vec<Option<DnsRecord>>, StepFailure> {
    let mut out = Vec::new();
    for w in want {
        let found = cx.clouds.dns.read_records(z, &w.name, &w.rtype).await?;
        out.push(
            found
                .into_iter()
                .find(|r| r.set_identifier == w.set_identifier),
        );
    }
    Ok(out)
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

#[async_trait]
impl Action for SwitchDns {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let z = zone(cx, &self.zone).await?;
        let want = desired(cx, &self.zone).await?;
        let cur = current(cx, &z, &want).await?;
        Ok(want
            .iter()
            .zip(&cur)
            .map(|(w, c)| Planned {
                call: "route53:ChangeResourceRecordSets UPSERT (one batch for the zone)".into(),
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
        let z = zone(cx, &self.zone).await?;
        let want = desired(cx, &self.zone).await?;
        let cur = current(cx, &z, &want).await?;
        let changes: Vec<DnsChange> = want
            .iter()
            .zip(&cur)
            .filter(|(w, c)| !matches(c, w))
            .map(|(w, _)| DnsChange::Upsert(w.clone()))
            .collect();
        let mut change_ids = Vec::new();
        for batch in batches(&changes) {
            let info = cx
                .clouds
                .dns
                .apply_changes(
                    &z,
                    batch,
                    &format!(
                        "drctl run {}: {} to {}",
                        cx.run_id,
                        cx.plan.name(),
                        cx.target
                    ),
                )
                .await?;
            change_ids.push(info.id);
        }
        if changes.is_empty() {
            tracing::info!(zone = %self.zone, "records already point at {}", cx.target);
        }
        Ok(json!({
            "zone": z.name,
            "zone_id": z.id,
            "change_ids": change_ids,
            "changed": changes.len(),
            "before": cur,
            "after": want,
            "submitted_at": Utc::now(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(i: usize) -> DnsChange {
        DnsChange::Upsert(DnsRecord {
            name: format!("r{i}.example.com."),
            rtype: "CNAME".into(),
            ttl: Some(60),
            values: vec!["x.example.com.".into()],
            set_identifier: None,
            weight: None,
        })
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
