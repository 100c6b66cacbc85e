//! A `[[dns]]` record's records-mode switch (`switch = "upsert"` or
//! `"weighted"`) through the traffic role ([`Switching`]), and Route 53's
//! zone changes ([`Route53Zones`]): the record sets a switch wants, read by
//! one listing of the zone, swapped in as few change batches as Route 53's
//! limits allow (a compare-and-swap never split), through the run's queue
//! that sends several plans' changes to one zone together.

use async_trait::async_trait;

use super::{DnsSpec, SwitchMode};
use crate::cloud::dns_batch::{Group, batches};
use crate::cloud::{CloudError, Clouds, DnsChange, DnsRecord, ErrorKind, HostedZone};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{
    Sent, SwapAt, Switching, Zone, ZoneApi, ZoneCalls, ZoneFound, norm,
};
use crate::plan::spec::ResourceKind;

/// Why records mode cannot move traffic when Route 53's API does not answer,
/// and what does.
pub const ROUTE53_API_DOWN: &str = "Route 53's API does not answer (its control plane, hosted in us-east-1 alone): records mode (switch = \"upsert\" or \"weighted\") cannot move traffic, so nothing was changed; a data-plane switch (switch = \"health-check\", docs/failover.md) moves traffic without that API";

impl Switching for DnsSpec {
    fn zone(&self) -> Zone<'_> {
        Zone {
            api: &Route53Zones,
            project: "",
            name: &self.zone,
        }
    }

    fn wanted(&self, plan: &Plan, target: &str, endpoint: Option<&str>) -> Vec<DnsRecord> {
        let name = if self.name.ends_with('.') {
            self.name.clone()
        } else {
            format!("{}.", self.name)
        };
        let simple = |value: Option<&str>| {
            let values = value.map(|v| vec![v.to_string()]).unwrap_or_default();
            vec![DnsRecord::simple(
                name.clone(),
                &self.rtype,
                Some(self.ttl),
                values,
            )]
        };
        match (&self.follows, self.switch) {
            (Some(_), _) => simple(endpoint),
            // A data-plane record is switched by its controls; where a
            // plain record of it is wanted (a drill's), it is the target's
            // value.
            (None, SwitchMode::Upsert | SwitchMode::HealthCheck) => {
                simple(self.targets.get(target).map(String::as_str))
            }
            (None, SwitchMode::Weighted) => (plan.regions().iter())
                .map(|region| DnsRecord {
                    name: name.clone(),
                    rtype: self.rtype.clone(),
                    ttl: Some(self.ttl),
                    values: self.targets.get(region).cloned().into_iter().collect(),
                    set_identifier: Some(region.clone()),
                    weight: Some(if region == target { 100 } else { 0 }),
                    routing: None,
                })
                .collect(),
        }
    }

    fn change(&self, target: &str) -> String {
        match (&self.follows, self.switch) {
            (Some(db), _) => format!("{} → endpoint of {db} in {target}", self.name),
            (None, SwitchMode::Upsert | SwitchMode::HealthCheck) => {
                let value = self.targets.get(target).map_or("-", String::as_str);
                format!("{} → {value}", self.name)
            }
            (None, SwitchMode::Weighted) => {
                format!("{} weights: {target}=100, others 0", self.name)
            }
        }
    }
}

/// Route 53's hosted zones, as a records-mode switch changes them.
pub struct Route53Zones;

impl Route53Zones {
    fn hosted(found: &ZoneFound) -> HostedZone {
        HostedZone {
            id: found.handle.clone(),
            name: found.dns_name.clone(),
        }
    }
}

#[async_trait]
impl ZoneApi for Route53Zones {
    fn provider(&self) -> &'static str {
        "Route 53"
    }

    fn kind(&self) -> ResourceKind {
        ResourceKind::Dns
    }

    fn subject(&self, _: &str, name: &str) -> String {
        name.to_ascii_lowercase()
    }

    fn calls(&self) -> ZoneCalls {
        ZoneCalls {
            switch: &[
                "route53:ListHostedZonesByName",
                "route53:ListResourceRecordSets",
                "route53:ChangeResourceRecordSets",
            ],
            verify: &["route53:ListResourceRecordSets"],
            waits: &["route53:ChangeResourceRecordSets"],
            poll: "route53:GetChange",
        }
    }

    fn api_down(&self) -> &'static str {
        ROUTE53_API_DOWN
    }

    fn strands(&self) -> bool {
        true
    }

    fn policies(&self) -> bool {
        // A plain record replaces any set it matches, an alias included
        // (its DELETE names the alias target as read).
        false
    }

    fn refuses(&self, _: &DnsRecord) -> Option<String> {
        None
    }

    fn look(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String {
        format!(
            "read it with `aws route53 list-resource-record-sets --hosted-zone-id <id of {}> --start-record-name {name} --start-record-type {rtype} --max-items 1` or drctl status",
            zone.name
        )
    }

    fn manual_delete(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String {
        format!(
            "delete the {rtype} record {name} in hosted zone {} (aws route53 change-resource-record-sets, action DELETE)",
            zone.name
        )
    }

    async fn find(&self, clouds: &Clouds, zone: Zone<'_>) -> Result<Option<ZoneFound>, CloudError> {
        Ok(clouds.dns.find_zone(zone.name).await?.map(|z| ZoneFound {
            handle: z.id,
            dns_name: z.name,
        }))
    }

    async fn depends(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
    ) -> Result<Option<String>, CloudError> {
        let f = clouds.dns.zone_features(&Self::hosted(found)).await?;
        if f.recovers_without_us_east_1() {
            return Ok(None);
        }
        let status = match (&f.accelerated_recovery, &f.failure) {
            (Some(s), Some(why)) => format!("{s}: {why}"),
            (Some(s), None) => s.clone(),
            (None, _) => "not reported by GetHostedZone".into(),
        };
        Ok(Some(format!(
            "zone {} has no accelerated recovery ({status}): a switch by records needs Route 53's control plane in us-east-1, so an impairment there stops it; enable it on calm days (aws route53 update-hosted-zone-features --hosted-zone-id {} --enable-accelerated-recovery), or switch through the data plane (switch = \"health-check\")",
            zone.name, found.handle
        )))
    }

    async fn protections(
        &self,
        clouds: &Clouds,
        _: Zone<'_>,
        found: &ZoneFound,
    ) -> Result<Vec<crate::cloud::Protection>, CloudError> {
        clouds.dns.protections(&Self::hosted(found)).await
    }

    fn lift(&self, found: &ZoneFound, p: &crate::cloud::Protection) -> String {
        format!(
            "aws route53 delete-resource-record-set-protections --hosted-zone-id {} --protections 'RecordName={},RecordType={}'",
            found.handle, p.name, p.rtype
        )
    }

    async fn read(
        &self,
        clouds: &Clouds,
        _: Zone<'_>,
        found: &ZoneFound,
        want: &[DnsRecord],
    ) -> Result<Vec<Option<DnsRecord>>, CloudError> {
        let mut keys: Vec<(String, String)> = (want.iter())
            .map(|w| (w.name.clone(), w.rtype.clone()))
            .collect();
        keys.dedup();
        let found = clouds.dns.read_many(&Self::hosted(found), &keys).await?;
        Ok(want
            .iter()
            .map(|w| {
                (found.iter())
                    .find(|r| {
                        norm(&r.name) == norm(&w.name)
                            && r.rtype.eq_ignore_ascii_case(&w.rtype)
                            && r.set_identifier == w.set_identifier
                    })
                    .cloned()
            })
            .collect())
    }

    async fn swap(&self, at: SwapAt<'_>, swaps: &[(Option<DnsRecord>, DnsRecord)]) -> Sent {
        let z = Self::hosted(at.found);
        let changes: Vec<DnsChange> = (swaps.iter())
            .flat_map(|(read, want)| DnsChange::swap(read.as_ref(), want))
            .collect();
        let mut out = Sent {
            in_effect: true,
            ..Sent::default()
        };
        if let Some(queue) = at.queue.filter(|_| !changes.is_empty()) {
            let group = Group {
                plan: at.plan.to_string(),
                changes,
            };
            match queue
                .submit(at.clouds.dns.as_ref(), &z, group, at.comment)
                .await
            {
                Ok(carried) => {
                    if carried.plans.len() > 1 {
                        tracing::info!(
                            zone = %z.name,
                            change = %carried.change_id,
                            "one batch for {} plans: {}",
                            carried.plans.len(),
                            carried.plans.join(", ")
                        );
                    }
                    out.change_ids.push(carried.change_id);
                    out.in_effect = carried.in_sync;
                }
                Err(e) => out.error = Some(e),
            }
            return out;
        }
        for batch in batches(&changes) {
            match at.clouds.dns.apply_changes(&z, batch, at.comment).await {
                Ok(info) => {
                    out.in_effect &= info.in_sync;
                    out.change_ids.push(info.id);
                }
                Err(e) => {
                    out.error = Some(e);
                    break;
                }
            }
        }
        out
    }

    async fn sets(
        &self,
        clouds: &Clouds,
        _: Zone<'_>,
        found: &ZoneFound,
        (name, rtype): (&str, &str),
    ) -> Result<Vec<DnsRecord>, CloudError> {
        clouds
            .dns
            .read_records(&Self::hosted(found), name, rtype)
            .await
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        _: Zone<'_>,
        found: &ZoneFound,
        sets: &[DnsRecord],
    ) -> Result<(String, bool), CloudError> {
        let changes: Vec<DnsChange> = sets.iter().cloned().map(DnsChange::Delete).collect();
        let z = Self::hosted(found);
        let info = (clouds.dns)
            .apply_changes(&z, &changes, "drctl drill cleanup")
            .await?;
        Ok((info.id, info.in_sync))
    }

    async fn list(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError> {
        let Some(z) = clouds.dns.find_zone(zone.name).await? else {
            return Ok(None);
        };
        clouds.dns.list_records(&z, "").await.map(Some)
    }

    fn refused(&self, e: &CloudError) -> bool {
        e.kind == ErrorKind::Client
    }

    async fn in_effect(&self, clouds: &Clouds, _: Zone<'_>, id: &str) -> Result<bool, CloudError> {
        Ok(clouds.dns.change_status(id).await?.in_sync)
    }

    async fn pending(&self, _: &Clouds, _: Zone<'_>) -> Result<Option<Vec<String>>, CloudError> {
        // Route 53 answers a change by its id alone: it cannot list a
        // zone's changes.
        Ok(None)
    }
}
