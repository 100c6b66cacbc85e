//! Route 53 and Cloud DNS in the fake: hosted zones, record sets changed
//! in batches (all or nothing, as both APIs are), health checks, and what
//! Cloud DNS's name servers answer for a health-checked (`primaryBackup`)
//! record set, from each serving address's control, as the world's
//! `dnsplane` does.

use super::*;

#[async_trait]
impl Dns for FakeCloud {
    async fn find_zone(&self, zone_name: &str) -> Result<Option<HostedZone>, CloudError> {
        // Reads reach Route 53 as every call reaches its region: a test
        // takes it down (`global`) or refuses a call.
        let s = (self.enter("route53:ListHostedZonesByName", "global", zone_name)).await?;
        Ok(s.zones.get(&fqdn(zone_name)).cloned())
    }

    async fn zone_features(&self, zone: &HostedZone) -> Result<ZoneFeatures, CloudError> {
        let s = (self.enter("route53:GetHostedZone", "global", &zone.name)).await?;
        if !s.zones.values().any(|z| z.id == zone.id) {
            return Err(not_found("route53", "GetHostedZone", &zone.name, "global"));
        }
        Ok(s.zone_features.get(&zone.id).cloned().unwrap_or_default())
    }

    async fn protections(&self, zone: &HostedZone) -> Result<Vec<Protection>, CloudError> {
        let s = (self.enter(
            "route53:ListResourceRecordSetProtections",
            "global",
            &zone.name,
        ))
        .await?;
        if !s.zones.values().any(|z| z.id == zone.id) {
            return Err(not_found(
                "route53",
                "ListResourceRecordSetProtections",
                &zone.name,
                "global",
            ));
        }
        Ok(s.protections.get(&zone.id).cloned().unwrap_or_default())
    }

    async fn read_records(
        &self,
        zone: &HostedZone,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let s = (self.enter("route53:ListResourceRecordSets", "global", &zone.name)).await?;
        let name = fqdn(name);
        Ok(s.records
            .get(&zone.id)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.name == name && r.rtype == rtype)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn apply_changes(
        &self,
        zone: &HostedZone,
        changes: &[DnsChange],
        _comment: &str,
    ) -> Result<ChangeInfo, CloudError> {
        self.tick_cost(
            "route53:ChangeResourceRecordSets",
            "global",
            &zone.name,
            1.0,
        )
        .await?;
        if let Some(t) = &self.timing
            && t.busy(&format!("zone:{}", zone.id))
        {
            return Err(CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
                ErrorKind::Throttled,
                "The request was rejected because Route 53 was still processing a prior request.",
            )
            .with_code("PriorRequestNotComplete"));
        }
        let mut s = self.state();
        if !s.zones.values().any(|z| z.id == zone.id) {
            return Err(not_found(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
            ));
        }
        // A protected name and type refuses the whole batch, as Route 53
        // does for every principal.
        let held = s.protections.get(&zone.id).cloned().unwrap_or_default();
        if let Some(p) = changes.iter().find_map(|c| {
            let r = c.record();
            held.iter().find(|p| p.covers(&r.name, &r.rtype))
        }) {
            return Err(CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
                ErrorKind::Client,
                format!(
                    "RRSet of name {} and type {} has a resource record set protection",
                    p.name, p.rtype
                ),
            )
            .with_code("InvalidChangeBatch"));
        }
        let recs = s.records.entry(zone.id.clone()).or_default();
        // All or nothing, as Route 53: the batch applies to a copy, kept
        // only when every change in it was accepted.
        let applied = apply_batch(recs.clone(), changes).map_err(|message| {
            CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
                ErrorKind::Client,
                message,
            )
            .with_code("InvalidChangeBatch")
        })?;
        s.change_counter += 1;
        let id = format!("CFAKE{}", s.change_counter);
        // Accepted just before Route 53's control plane failed over to its
        // accelerated-recovery copy: answered, never applied, never INSYNC.
        if s.strand_changes > 0 {
            s.strand_changes -= 1;
            s.stranded.insert(id.clone());
            (s.writes).push(format!("ChangeResourceRecordSets {} (stranded)", zone.name));
            return Ok(ChangeInfo { id, in_sync: false });
        }
        *s.records.entry(zone.id.clone()).or_default() = applied;
        s.writes
            .push(format!("ChangeResourceRecordSets {}", zone.name));
        let in_sync = match &self.timing {
            None => true,
            Some(t) => {
                t.start(format!("zone:{}", zone.id), "route53:ChangeProcessing");
                t.start(format!("change:{id}"), "route53:ChangeResourceRecordSets");
                false
            }
        };
        Ok(ChangeInfo { id, in_sync })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        self.tick("route53:GetChange", "global", change_id).await?;
        let stranded = self.state().stranded.contains(change_id);
        Ok(ChangeInfo {
            id: change_id.into(),
            in_sync: !stranded
                && !(self.timing.as_ref()).is_some_and(|t| t.busy(&format!("change:{change_id}"))),
        })
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
        self.tick("route53:ListHealthChecks", "global", "*").await?;
        Ok(self.state().health_checks.clone())
    }

    async fn create_health_check(&self, want: &HealthCheck) -> Result<HealthCheck, CloudError> {
        self.tick("route53:CreateHealthCheck", "global", &want.id)
            .await?;
        let mut s = self.state();
        if let Some(h) = s
            .health_checks
            .iter()
            .find(|h| h.caller_reference == want.caller_reference)
        {
            return Ok(h.clone());
        }
        s.change_counter += 1;
        let made = HealthCheck {
            id: format!("hc-fake-{}", s.change_counter),
            ..want.clone()
        };
        s.health_checks.push(made.clone());
        s.writes
            .push(format!("CreateHealthCheck {}", want.caller_reference));
        Ok(made)
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
        self.tick("route53:DeleteHealthCheck", "global", id).await?;
        let mut s = self.state();
        s.health_checks.retain(|h| h.id != id);
        s.writes.push(format!("DeleteHealthCheck {id}"));
        Ok(())
    }

    async fn list_records(
        &self,
        zone: &HostedZone,
        suffix: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.tick("route53:ListResourceRecordSets", "global", &zone.name)
            .await?;
        // Fully qualified and case-insensitive, like Route 53's names.
        let suffix = match suffix {
            "" => String::new(),
            s => fqdn(&s.to_ascii_lowercase()),
        };
        Ok(self
            .state()
            .records
            .get(&zone.id)
            .into_iter()
            .flatten()
            .filter(|r| fqdn(&r.name.to_ascii_lowercase()).ends_with(&suffix))
            .cloned()
            .collect())
    }
}

impl FakeState {
    /// What `resourceRecordSets.list` of `zone` in `project` answers before
    /// it lists (for `res`): an unreachable API, or a zone that does not
    /// exist, as Cloud DNS names it.
    fn zone_listed(&self, (project, zone): (&str, &str), res: &str) -> Result<(), CloudError> {
        self.reach("clouddns", "resourceRecordSets.list", res, "global")?;
        if self
            .cloud_zones
            .contains_key(&(project.to_string(), zone.to_string()))
        {
            return Ok(());
        }
        Err(CloudError::new(
            "clouddns",
            "resourceRecordSets.list",
            res,
            "global",
            ErrorKind::NotFound,
            format!("The 'parameters.managedZone' resource named '{zone}' does not exist."),
        )
        .with_code("NOT_FOUND"))
    }

    /// What Cloud DNS's name servers answer for `name`/`rtype` in the
    /// managed zone serving `dns_name` (`None`: no such zone): a plain
    /// record set's values; a `primaryBackup`'s primary targets while one
    /// is healthy, else the first backup item with a healthy target, else
    /// the primary (all unhealthy), as the world's `dnsplane` answers.
    pub(super) fn cloud_answer(
        &self,
        dns_name: &str,
        name: &str,
        rtype: &str,
    ) -> Option<Vec<String>> {
        let norm = |v: &str| fqdn(&v.to_ascii_lowercase());
        let zones: Vec<&(String, String)> = (self.cloud_zones.iter())
            .filter(|(_, d)| norm(d) == norm(dns_name))
            .map(|(k, _)| k)
            .collect();
        if zones.is_empty() {
            return None;
        }
        // Every zone serving the name (two projects may), the first that
        // holds the set answering.
        let set = zones.iter().find_map(|(project, zone)| {
            (self.cloud_rrsets.iter()).find_map(|((p, z, n, t), r)| {
                (p == project
                    && z == zone
                    && norm(n) == norm(name)
                    && t.eq_ignore_ascii_case(rtype))
                .then_some(r)
            })
        });
        let Some(set) = set else {
            return Some(Vec::new());
        };
        let Some(pb) = &set.primary_backup else {
            return Some(set.rrdatas.clone());
        };
        let healthy = |values: &[String]| values.iter().any(|v| self.serving(v));
        if healthy(&pb.primary) {
            return Some(pb.primary.clone());
        }
        let backup = (pb.backups.iter()).find(|b| healthy(&b.rrdatas));
        Some(backup.map_or_else(|| pb.primary.clone(), |b| b.rrdatas.clone()))
    }

    /// Whether the serving address `value` answers its health path
    /// healthy: its control ([`FakeCloud::serve_control_at`]) reads
    /// `state=serve` and its region answers. An address with no control,
    /// a control missing or unreadable, is unhealthy (fails closed).
    fn serving(&self, value: &str) -> bool {
        let Some((region, url)) = self.cloud_controls.get(&address_key(value)) else {
            return false;
        };
        !self.dead_regions.contains(region)
            && (self.objects.get(&url.to_string())).is_some_and(|b| {
                String::from_utf8_lossy(b).contains(crate::cloud::control::SERVE_MARKER)
            })
    }
}

/// A serving address as the fake keys its control: trimmed, lower case,
/// without a trailing dot.
fn address_key(value: &str) -> String {
    value.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl FakeCloud {
    /// Says that the serving address `value` in GCP region `region`
    /// answers its health path from control object `control`, as the
    /// world's emulator maps an address to its control
    /// (`/emu/dns/health`): what a health-checked Cloud DNS target's
    /// health follows.
    pub fn serve_control_at(&self, value: &str, region: &str, control: &ObjectUrl) {
        let at = (region.to_string(), control.clone());
        self.state().cloud_controls.insert(address_key(value), at);
    }
}

/// A Cloud DNS record set's key in the fake.
fn rrset_key(
    project: &str,
    zone: &str,
    name: &str,
    rtype: &str,
) -> (String, String, String, String) {
    (
        project.to_string(),
        zone.to_string(),
        name.to_ascii_lowercase(),
        rtype.to_string(),
    )
}

impl FakeCloud {
    /// Adds Cloud DNS managed zone `zone` of `project`, serving `dns_name`.
    pub fn add_cloud_zone(&self, project: &str, zone: &str, dns_name: &str) {
        self.state()
            .cloud_zones
            .insert((project.into(), zone.into()), dns_name.into());
    }

    /// Puts record set `r` in Cloud DNS zone `zone` as it is (no change).
    pub fn put_cloud_record(&self, project: &str, zone: &str, r: CloudRecordSet) {
        let key = rrset_key(project, zone, &r.name, &r.rtype);
        self.state().cloud_rrsets.insert(key, r);
    }

    /// The record set `name`/`rtype` of Cloud DNS zone `zone`, as it is.
    pub fn cloud_record(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Option<CloudRecordSet> {
        let key = rrset_key(project, zone, name, rtype);
        self.state().cloud_rrsets.get(&key).cloned()
    }

    /// Arms another writer: right before the next change of `zone`, record
    /// set `r` is put there (so a change built on an earlier read no longer
    /// matches).
    pub fn race_cloud_record(&self, project: &str, zone: &str, r: CloudRecordSet) {
        self.state()
            .cloud_dns_races
            .insert((project.into(), zone.into()), r);
    }
}

#[async_trait]
impl CloudDns for FakeCloud {
    async fn describe_zone(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Option<CloudDnsZone>, CloudError> {
        let s = self
            .enter("clouddns:managedZones.get", "global", zone)
            .await?;
        Ok(
            (s.cloud_zones.get(&(project.to_string(), zone.to_string()))).map(|d| CloudDnsZone {
                name: zone.to_string(),
                dns_name: d.clone(),
            }),
        )
    }

    async fn read_record_set(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Option<CloudRecordSet>, CloudError> {
        self.tick("clouddns:resourceRecordSets.list", "global", name)
            .await?;
        let s = self.state();
        s.zone_listed((project, zone), name)?;
        Ok(s.cloud_rrsets
            .get(&rrset_key(project, zone, name, rtype))
            .cloned())
    }

    async fn list_record_sets(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudRecordSet>, CloudError> {
        self.tick("clouddns:resourceRecordSets.list", "global", zone)
            .await?;
        let s = self.state();
        s.zone_listed((project, zone), zone)?;
        Ok((s.cloud_rrsets.iter())
            .filter(|((p, z, _, _), _)| p == project && z == zone)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn delete_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        let mut s = self
            .enter("clouddns:changes.create", "global", &deletion.name)
            .await?;
        let key = rrset_key(project, zone, &deletion.name, &deletion.rtype);
        if s.cloud_rrsets.get(&key) != Some(deletion) {
            return Err(CloudError::new(
                "clouddns",
                "changes.create",
                &deletion.name,
                "global",
                ErrorKind::Precondition,
                "Precondition not met for 'entity.change.deletions[0]'",
            )
            .with_code("FAILED_PRECONDITION"));
        }
        s.writes.push(format!("changes.create -{}", deletion.name));
        s.cloud_rrsets.remove(&key);
        Ok(s.cloud_change(project, zone))
    }

    async fn swap_record_sets(
        &self,
        project: &str,
        zone: &str,
        swaps: &[(Option<CloudRecordSet>, CloudRecordSet)],
    ) -> Result<CloudDnsChange, CloudError> {
        let named = swaps.first().map_or(zone, |(_, a)| a.name.as_str());
        let mut s = self
            .enter("clouddns:changes.create", "global", named)
            .await?;
        let refuse = |code: &str, m: String| {
            CloudError::new(
                "clouddns",
                "changes.create",
                named,
                "global",
                ErrorKind::Precondition,
                m,
            )
            .with_code(code)
        };
        if let Some(r) = s
            .cloud_dns_races
            .remove(&(project.to_string(), zone.to_string()))
        {
            let key = rrset_key(project, zone, &r.name, &r.rtype);
            s.cloud_rrsets.insert(key, r);
        }
        let same = |a: &CloudRecordSet, b: &CloudRecordSet| {
            let mut x = a.rrdatas.clone();
            let mut y = b.rrdatas.clone();
            x.sort();
            y.sort();
            a.ttl == b.ttl && x == y && a.routed == b.routed && a.primary_backup == b.primary_backup
        };
        // Judged whole before anything is applied: Cloud DNS applies a
        // change all or nothing.
        let deletions = swaps.iter().filter_map(|(d, _)| d.as_ref());
        for (i, d) in deletions.enumerate() {
            let have = s
                .cloud_rrsets
                .get(&rrset_key(project, zone, &d.name, &d.rtype));
            if !have.is_some_and(|h| same(d, h)) {
                return Err(refuse(
                    "FAILED_PRECONDITION",
                    format!("Precondition not met for 'entity.change.deletions[{i}]'"),
                ));
            }
        }
        for (i, (d, a)) in swaps.iter().enumerate() {
            let key = rrset_key(project, zone, &a.name, &a.rtype);
            let deleted = d
                .as_ref()
                .is_some_and(|d| (&d.name, &d.rtype) == (&a.name, &a.rtype));
            if !deleted && s.cloud_rrsets.contains_key(&key) {
                return Err(refuse(
                    "ALREADY_EXISTS",
                    format!(
                        "The resource 'entity.change.additions[{i}]' named '{} ({})' already exists",
                        a.name, a.rtype
                    ),
                ));
            }
        }
        for (d, a) in swaps {
            if let Some(d) = d {
                s.cloud_rrsets
                    .remove(&rrset_key(project, zone, &d.name, &d.rtype));
            }
            s.writes.push(format!("changes.create {}", a.name));
            s.cloud_rrsets
                .insert(rrset_key(project, zone, &a.name, &a.rtype), a.clone());
        }
        Ok(s.cloud_change(project, zone))
    }

    async fn dns_change(
        &self,
        project: &str,
        zone: &str,
        id: &str,
    ) -> Result<CloudDnsChange, CloudError> {
        let mut s = self.enter("clouddns:changes.get", "global", id).await?;
        let key = (project.to_string(), zone.to_string(), id.to_string());
        let Some(reads) = s.cloud_changes.get(&key).copied() else {
            return Err(CloudError::new(
                "clouddns",
                "changes.get",
                id,
                "global",
                ErrorKind::NotFound,
                format!("The 'parameters.changeId' resource named '{id}' does not exist."),
            )
            .with_code("NOT_FOUND"));
        };
        s.cloud_changes.insert(key, reads + 1);
        Ok(CloudDnsChange {
            id: id.to_string(),
            done: reads >= 1,
        })
    }

    async fn pending_dns_changes(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudDnsChange>, CloudError> {
        let s = self.enter("clouddns:changes.list", "global", zone).await?;
        Ok((s.cloud_changes.iter())
            .filter(|((p, z, _), reads)| p == project && z == zone && **reads < 1)
            .map(|((_, _, id), _)| CloudDnsChange {
                id: id.clone(),
                done: false,
            })
            .collect())
    }
}
