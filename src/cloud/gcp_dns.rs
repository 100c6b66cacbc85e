//! Cloud DNS adapter ([`CloudDns`]) over Google's official
//! `google-cloud-dns-v1` (the Cloud DNS API v1's `ManagedZones`,
//! `ResourceRecordSets` and `Changes` clients: `managedZones.get`,
//! `resourceRecordSets.list`, `changes.create`, `changes.get`).
//!
//! Why a change and not `resourceRecordSets.patch`: a patch replaces the
//! record set whatever it holds, so a writer whose read is stale (a run
//! that slept through its lease) would overwrite a newer decision. A change
//! is atomic and its deletions must match the zone's data exactly (Cloud
//! DNS answers 412 `conditionNotMet` otherwise), so deleting the record set
//! as read and adding the target's is a compare-and-swap, as the Route 53
//! switch's DELETE + CREATE is (`crate::steps` `switch-dns`).
//!
//! * The clients are built from [`ClientBasis`] as every Google client is
//!   ([`super::gcp`]): at [`CloudSettings::gcp_endpoint`] with anonymous
//!   credentials when set (the emulator, `localstack/gcp_emu_dns.py`),
//!   else at Google's endpoint with Application Default Credentials; on
//!   first use, so a plan with no Cloud DNS needs no GCP credentials.
//! * Reads are retried by the crate within drctl's [`RetryPolicy`]; a
//!   change is a POST, which the crate does not retry, and is sent once,
//!   after the fence at the wire ([`super::wire`]) is asked right before it
//!   is handed to the crate (docs/state.md, fenced calls).
//! * Cloud DNS is global: errors name the region [`REGION`].

use super::gcp::{gax_error, gax_not_found};
use async_trait::async_trait;
use google_cloud_dns_v1::client::{Changes, ManagedZones, ResourceRecordSets};
use google_cloud_dns_v1::model;
use tokio::sync::OnceCell;

use super::gcp::gcp_clients;
use super::retry::RetryPolicy;
use super::{
    BackupItem, CloudDns, CloudDnsChange, CloudDnsZone, CloudError, CloudRecordSet, CloudSettings,
    ErrorKind, PrimaryBackup,
};

const SERVICE: &str = "clouddns";
/// The region Cloud DNS errors name (the API is global).
pub const REGION: &str = "global";
/// How many of a zone's most recent changes are read for those pending.
pub const RECENT_CHANGES: i32 = 20;
/// The pages of a zone's record sets a sweep reads.
const LIST_PAGES: usize = 50;

/// [`CloudDns`] over the Cloud DNS API v1.
pub struct GcpDns {
    endpoint: Option<String>,
    retry: RetryPolicy,
    inner: OnceCell<Inner>,
}

struct Inner {
    zones: ManagedZones,
    rrsets: ResourceRecordSets,
    changes: Changes,
}

fn err(
    operation: &'static str,
    resource: &str,
    kind: ErrorKind,
    message: impl Into<String>,
) -> CloudError {
    CloudError::new(SERVICE, operation, resource, REGION, kind, message)
}

/// Whether `e` is Cloud DNS refusing a change because the zone is not as
/// the change assumed: a deletion that no longer matches (412
/// `conditionNotMet`, `FAILED_PRECONDITION`) or an addition that already
/// exists (409 `alreadyExists`, `ALREADY_EXISTS`).
pub fn is_conflict(e: &CloudError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("FAILED_PRECONDITION" | "ALREADY_EXISTS" | "ABORTED" | "HTTP 412" | "HTTP 409")
    )
}

/// The domain's view of a record set the API listed.
pub fn record_set_of(r: &model::ResourceRecordSet) -> CloudRecordSet {
    CloudRecordSet {
        name: r.name.clone().unwrap_or_default(),
        rtype: r.r#type.clone().unwrap_or_default(),
        ttl: i64::from(r.ttl.unwrap_or_default()),
        rrdatas: r.rrdatas.clone(),
        routed: r.routing_policy.is_some(),
        primary_backup: (r.routing_policy.as_ref())
            .and_then(|p| p.primary_backup.as_ref())
            .map(|pb| PrimaryBackup {
                primary: (pb.primary_targets.as_ref())
                    .map(|t| t.external_endpoints.clone())
                    .unwrap_or_default(),
                backups: (pb.backup_geo_targets.as_ref())
                    .map(|g| {
                        (g.items.iter())
                            .map(|i| BackupItem {
                                location: i.location.clone().unwrap_or_default(),
                                rrdatas: (i.rrdatas.iter())
                                    .chain(
                                        (i.health_checked_targets.iter())
                                            .flat_map(|t| &t.external_endpoints),
                                    )
                                    .cloned()
                                    .collect(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                health_check: (r.routing_policy.as_ref())
                    .and_then(|p| p.health_check.clone())
                    .filter(|h| !h.is_empty()),
            }),
    }
}

/// The API's routing policy for a [`PrimaryBackup`]: every target
/// health-checked as an external endpoint (a backup's values are its
/// `healthCheckedTargets`, not plain rrdatas, so that an unhealthy one is
/// not answered), no trickle traffic.
pub fn api_primary_backup(pb: &PrimaryBackup) -> model::RRSetRoutingPolicy {
    let items = pb.backups.iter().map(|b| {
        model::RRSetRoutingPolicyGeoPolicyGeoPolicyItem::new()
            .set_location(b.location.clone())
            .set_health_checked_targets(
                model::RRSetRoutingPolicyHealthCheckTargets::new()
                    .set_external_endpoints(b.rrdatas.clone()),
            )
    });
    let policy = model::RRSetRoutingPolicyPrimaryBackupPolicy::new()
        .set_primary_targets(
            model::RRSetRoutingPolicyHealthCheckTargets::new()
                .set_external_endpoints(pb.primary.clone()),
        )
        .set_backup_geo_targets(model::RRSetRoutingPolicyGeoPolicy::new().set_items(items));
    let out = model::RRSetRoutingPolicy::new().set_primary_backup(policy);
    match &pb.health_check {
        Some(h) => out.set_health_check(h.clone()),
        None => out,
    }
}

/// The API's record set for the domain's: its `primaryBackup` policy when
/// it has one (a routed record set of another policy is never written:
/// the steps refuse it before).
pub fn api_record_set(r: &CloudRecordSet) -> model::ResourceRecordSet {
    let out = model::ResourceRecordSet::new()
        .set_name(r.name.clone())
        .set_type(r.rtype.clone())
        .set_ttl(i32::try_from(r.ttl).unwrap_or(i32::MAX))
        .set_rrdatas(r.rrdatas.clone());
    match &r.primary_backup {
        Some(pb) => out.set_routing_policy(api_primary_backup(pb)),
        None => out,
    }
}

/// The domain's view of a change the API answered.
pub fn change_of(c: &model::Change) -> CloudDnsChange {
    CloudDnsChange {
        id: c.id.clone().unwrap_or_default(),
        done: c.status.as_ref() == Some(&model::change::Status::Done),
    }
}

impl GcpDns {
    /// Builds the adapter; nothing is resolved until the first call.
    pub fn new(settings: &CloudSettings) -> Self {
        Self {
            endpoint: settings.gcp_endpoint.clone(),
            retry: settings.retry,
            inner: OnceCell::new(),
        }
    }

    async fn client(&self, op: &'static str, res: &str) -> Result<&Inner, CloudError> {
        self.inner
            .get_or_try_init(|| async {
                let fail = |kind, m: String| err(op, res, kind, m);
                Ok(
                    gcp_clients!(self.endpoint.as_deref(), &self.retry, fail => Inner {
                        zones: ManagedZones,
                        rrsets: ResourceRecordSets,
                        changes: Changes,
                    }),
                )
            })
            .await
    }

    /// Sends `body` as one change of managed zone `zone` of `project`
    /// (`name`: the record set it is about), through this adapter's one
    /// [`write`].
    async fn change(
        &self,
        (project, zone): (&str, &str),
        name: &str,
        body: model::Change,
    ) -> Result<CloudDnsChange, CloudError> {
        const OP: &str = "changes.create";
        let c = self.client(OP, name).await?;
        let send = (c.changes.create())
            .set_project(project)
            .set_managed_zone(zone)
            .set_body(body)
            .send();
        super::gcp::gax_write((SERVICE, OP), (name, REGION), send, change_of).await
    }
}

#[async_trait]
impl CloudDns for GcpDns {
    async fn describe_zone(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Option<CloudDnsZone>, CloudError> {
        const OP: &str = "managedZones.get";
        let c = self.client(OP, zone).await?;
        match c
            .zones
            .get()
            .set_project(project)
            .set_managed_zone(zone)
            .send()
            .await
        {
            Ok(z) => Ok(Some(CloudDnsZone {
                name: z.name.unwrap_or_default(),
                dns_name: z.dns_name.unwrap_or_default(),
            })),
            Err(e) if gax_not_found(&e) => Ok(None),
            Err(e) => Err(gax_error(SERVICE, OP, (zone, REGION), &e)),
        }
    }

    async fn read_record_set(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Option<CloudRecordSet>, CloudError> {
        const OP: &str = "resourceRecordSets.list";
        let c = self.client(OP, name).await?;
        let page = c
            .rrsets
            .list()
            .set_project(project)
            .set_managed_zone(zone)
            .set_name(name)
            .set_type(rtype)
            .send()
            .await
            .map_err(|e| gax_error(SERVICE, OP, (name, REGION), &e))?;
        // One name and type is one record set (Cloud DNS keeps no two).
        Ok(page
            .rrsets
            .iter()
            .find(|r| r.r#type.as_deref() == Some(rtype))
            .map(record_set_of))
    }

    async fn list_record_sets(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudRecordSet>, CloudError> {
        const OP: &str = "resourceRecordSets.list";
        let c = self.client(OP, zone).await?;
        let mut out = Vec::new();
        let mut token = String::new();
        // A zone's record sets, a page at a time, up to a bound: a sweep
        // reads them all, and says so when a zone holds more.
        for _ in 0..LIST_PAGES {
            let page = c
                .rrsets
                .list()
                .set_project(project)
                .set_managed_zone(zone)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| gax_error(SERVICE, OP, (zone, REGION), &e))?;
            out.extend(page.rrsets.iter().map(record_set_of));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = next,
                None => return Ok(out),
            }
        }
        Err(CloudError::new(
            "clouddns",
            OP,
            zone,
            "global",
            ErrorKind::Client,
            format!("more than {LIST_PAGES} pages of record sets: not all were read"),
        ))
    }

    async fn swap_record_sets(
        &self,
        project: &str,
        zone: &str,
        swaps: &[(Option<CloudRecordSet>, CloudRecordSet)],
    ) -> Result<CloudDnsChange, CloudError> {
        let body = model::Change::new()
            .set_additions(swaps.iter().map(|(_, a)| api_record_set(a)))
            .set_deletions(
                swaps
                    .iter()
                    .filter_map(|(d, _)| d.as_ref().map(api_record_set)),
            );
        let named = swaps.first().map_or(zone, |(_, a)| a.name.as_str());
        self.change((project, zone), named, body).await
    }

    async fn delete_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        let body = model::Change::new().set_deletions([api_record_set(deletion)]);
        self.change((project, zone), &deletion.name, body).await
    }

    async fn dns_change(
        &self,
        project: &str,
        zone: &str,
        id: &str,
    ) -> Result<CloudDnsChange, CloudError> {
        const OP: &str = "changes.get";
        let c = self.client(OP, zone).await?;
        c.changes
            .get()
            .set_project(project)
            .set_managed_zone(zone)
            .set_change_id(id)
            .send()
            .await
            .map(|ch| change_of(&ch))
            .map_err(|e| gax_error(SERVICE, OP, (zone, REGION), &e))
    }

    async fn pending_dns_changes(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudDnsChange>, CloudError> {
        const OP: &str = "changes.list";
        let c = self.client(OP, zone).await?;
        let page = c
            .changes
            .list()
            .set_project(project)
            .set_managed_zone(zone)
            .set_sort_by(model::changes::list_request::SortBy::ChangeSequence)
            .set_sort_order("descending")
            .set_max_results(RECENT_CHANGES)
            .send()
            .await
            .map_err(|e| gax_error(SERVICE, OP, (zone, REGION), &e))?;
        Ok((page.changes.iter())
            .map(change_of)
            .filter(|ch| !ch.done)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_set_reads_and_writes_back_the_same_and_a_change_is_done_only_when_done() {
        let api = model::ResourceRecordSet::new()
            .set_name("orders.gcp.example.com.")
            .set_type("CNAME")
            .set_ttl(60)
            .set_rrdatas(["api-usc1.example.com."]);
        let r = record_set_of(&api);
        assert_eq!(
            (r.name.as_str(), r.rtype.as_str(), r.ttl, r.routed),
            ("orders.gcp.example.com.", "CNAME", 60, false)
        );
        assert_eq!(api_record_set(&r), api);
        let routed = api.set_routing_policy(model::RRSetRoutingPolicy::new());
        assert!(record_set_of(&routed).routed);
        let pending = model::Change::new()
            .set_id("7")
            .set_status(model::change::Status::Pending);
        assert_eq!(
            change_of(&pending),
            CloudDnsChange {
                id: "7".into(),
                done: false
            }
        );
        let done = pending.set_status(model::change::Status::Done);
        assert!(change_of(&done).done);
    }

    #[test]
    fn a_refused_change_is_a_conflict_and_other_errors_are_not() {
        let e =
            |code: &str| err("changes.create", "r", ErrorKind::Precondition, "x").with_code(code);
        assert!(is_conflict(&e("FAILED_PRECONDITION")));
        assert!(is_conflict(&e("ALREADY_EXISTS")));
        assert!(!is_conflict(&e("NOT_FOUND")));
        assert!(!is_conflict(&err(
            "changes.create",
            "r",
            ErrorKind::Server,
            "x"
        )));
    }
}
