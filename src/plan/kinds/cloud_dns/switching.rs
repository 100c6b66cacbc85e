//! A `[[cloud_dns]]` record's records-mode switch (`switch = "records"`)
//! through the traffic role ([`Switching`]), and Cloud DNS's managed zone
//! changes ([`CloudDnsZones`]): the plan's record sets of one managed zone
//! swapped in one `changes.create` whose deletions are the sets exactly as
//! read (Cloud DNS applies a change whole, and refuses it, 412
//! `conditionNotMet`, when a deletion no longer matches), then polled with
//! `changes.get` until `done`.

use async_trait::async_trait;

use super::CloudDnsSpec;
use crate::cloud::{CloudError, CloudRecordSet, Clouds, DnsRecord, ErrorKind, Routing, gcp_dns};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{Sent, SwapAt, Switching, Zone, ZoneApi, ZoneCalls, ZoneFound};
use crate::plan::spec::ResourceKind;

impl Switching for CloudDnsSpec {
    fn zone(&self) -> Zone<'_> {
        Zone {
            api: &CloudDnsZones,
            project: &self.project,
            name: &self.zone,
        }
    }

    fn wanted(&self, _: &Plan, target: &str, _: Option<&str>) -> Vec<DnsRecord> {
        let values = self
            .target(target)
            .map(str::to_string)
            .into_iter()
            .collect();
        vec![DnsRecord::simple(
            self.name.clone(),
            &self.rtype,
            Some(self.ttl),
            values,
        )]
    }

    fn change(&self, target: &str) -> String {
        let gcp = self.sites.gcp(target);
        let value = self.target(target).unwrap_or("-");
        format!("{} {} → {value} ({gcp})", self.name, self.rtype)
    }
}

/// A Cloud DNS record set as the switch compares it: a routing policy (geo,
/// weighted, primary/backup), which a plain record does not replace, is
/// read as a routing the plain record lacks.
fn record_of(r: CloudRecordSet) -> DnsRecord {
    DnsRecord {
        routing: r.routed.then(Routing::default),
        ..DnsRecord::simple(r.name, &r.rtype, Some(r.ttl), r.rrdatas)
    }
}

/// A plain record set as Cloud DNS keeps it.
fn set_of(r: &DnsRecord) -> CloudRecordSet {
    CloudRecordSet {
        name: r.name.clone(),
        rtype: r.rtype.clone(),
        ttl: r.ttl.unwrap_or_default(),
        rrdatas: r.values.clone(),
        routed: false,
        primary_backup: None,
    }
}

/// Cloud DNS's managed zones, as a records-mode switch changes them.
pub struct CloudDnsZones;

#[async_trait]
impl ZoneApi for CloudDnsZones {
    fn provider(&self) -> &'static str {
        "Cloud DNS"
    }

    fn kind(&self) -> ResourceKind {
        ResourceKind::CloudDns
    }

    fn subject(&self, project: &str, name: &str) -> String {
        format!("{project}/{name}")
    }

    fn calls(&self) -> ZoneCalls {
        ZoneCalls {
            switch: &[
                "clouddns:managedZones.get",
                "clouddns:resourceRecordSets.list",
                "clouddns:changes.create",
            ],
            verify: &["clouddns:resourceRecordSets.list"],
            waits: &["clouddns:changes.create"],
            poll: "clouddns:changes.get",
        }
    }

    fn api_down(&self) -> &'static str {
        "Cloud DNS's API does not answer: records mode (switch = \"records\") cannot move traffic, so nothing was changed; a data-plane switch (switch = \"health-check\", docs/failover.md) moves traffic without that API"
    }

    fn strands(&self) -> bool {
        // A change is done or pending; its control plane is global.
        false
    }

    fn policies(&self) -> bool {
        true
    }

    fn refuses(&self, read: &DnsRecord) -> Option<String> {
        read.routing.is_some().then(|| {
            "it has a routing policy (geo, weighted or failover), which a records-mode switch does not replace".to_string()
        })
    }

    fn look(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String {
        format!(
            "read it with `gcloud dns record-sets describe {name} --type {rtype} --zone {} --project {}`",
            zone.name, zone.project
        )
    }

    fn manual_delete(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String {
        format!(
            "gcloud dns record-sets delete {name} --type {rtype} --zone {} --project {}",
            zone.name, zone.project
        )
    }

    async fn find(&self, clouds: &Clouds, zone: Zone<'_>) -> Result<Option<ZoneFound>, CloudError> {
        let found = clouds
            .cloud_dns
            .describe_zone(zone.project, zone.name)
            .await?;
        Ok(found.map(|z| ZoneFound {
            handle: z.name,
            dns_name: z.dns_name,
        }))
    }

    async fn depends(
        &self,
        _: &Clouds,
        _: Zone<'_>,
        _: &ZoneFound,
    ) -> Result<Option<String>, CloudError> {
        // Cloud DNS's control plane is global: no one region's outage
        // stops a change.
        Ok(None)
    }

    async fn protections(
        &self,
        _: &Clouds,
        _: Zone<'_>,
        _: &ZoneFound,
    ) -> Result<Vec<crate::cloud::Protection>, CloudError> {
        // Cloud DNS has no record-set protections.
        Ok(Vec::new())
    }

    fn lift(&self, found: &ZoneFound, p: &crate::cloud::Protection) -> String {
        format!(
            "Cloud DNS has no record-set protections ({} {} in {})",
            p.name, p.rtype, found.handle
        )
    }

    async fn read(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        _: &ZoneFound,
        want: &[DnsRecord],
    ) -> Result<Vec<Option<DnsRecord>>, CloudError> {
        let mut out = Vec::with_capacity(want.len());
        for w in want {
            let read = (clouds.cloud_dns)
                .read_record_set(zone.project, zone.name, &w.name, &w.rtype)
                .await?;
            out.push(read.map(record_of));
        }
        Ok(out)
    }

    async fn swap(&self, at: SwapAt<'_>, swaps: &[(Option<DnsRecord>, DnsRecord)]) -> Sent {
        let sets: Vec<(Option<CloudRecordSet>, CloudRecordSet)> = (swaps.iter())
            .map(|(read, want)| (read.as_ref().map(set_of), set_of(want)))
            .collect();
        let (project, zone) = (at.zone.project, at.zone.name);
        match at
            .clouds
            .cloud_dns
            .swap_record_sets(project, zone, &sets)
            .await
        {
            Ok(c) => Sent {
                change_ids: vec![c.id],
                in_effect: c.done,
                error: None,
            },
            Err(e) => Sent {
                error: Some(e),
                ..Sent::default()
            },
        }
    }

    async fn sets(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        _: &ZoneFound,
        (name, rtype): (&str, &str),
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let read = (clouds.cloud_dns)
            .read_record_set(zone.project, zone.name, name, rtype)
            .await?;
        Ok(read.map(record_of).into_iter().collect())
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        _: &ZoneFound,
        sets: &[DnsRecord],
    ) -> Result<(String, bool), CloudError> {
        // A name and type hold one record set in Cloud DNS: one each.
        let mut last = (String::new(), true);
        for set in sets {
            let c = (clouds.cloud_dns)
                .delete_record_set(zone.project, zone.name, &set_of(set))
                .await?;
            last = (c.id, c.done);
        }
        Ok(last)
    }

    async fn list(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError> {
        match clouds
            .cloud_dns
            .list_record_sets(zone.project, zone.name)
            .await
        {
            Ok(sets) => Ok(Some(sets.into_iter().map(record_of).collect())),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn refused(&self, e: &CloudError) -> bool {
        gcp_dns::is_conflict(e)
    }

    async fn in_effect(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        id: &str,
    ) -> Result<bool, CloudError> {
        let c = clouds
            .cloud_dns
            .dns_change(zone.project, zone.name, id)
            .await?;
        Ok(c.done)
    }

    async fn pending(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
    ) -> Result<Option<Vec<String>>, CloudError> {
        let pending = (clouds.cloud_dns)
            .pending_dns_changes(zone.project, zone.name)
            .await?;
        Ok(Some(pending.into_iter().map(|c| c.id).collect()))
    }
}
