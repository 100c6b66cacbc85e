//! Route 53: hosted zones, record sets, atomic change batches.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, HealthCheckConfig,
    HealthCheckType, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};

use super::{Call, ROUTE53_REGION, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    ChangeInfo, CloudError, DnsChange, DnsRecord, ErrorKind, FailoverRole, HealthCheck, HostedZone,
    Protection, Routing, ZoneFeatures,
};

const SERVICE: &str = "route53";
/// Errors of a global service name this as their region.
const GLOBAL: &str = "global";

/// [`crate::cloud::Dns`] over Route 53.
#[derive(Debug, Clone)]
pub struct Route53Dns {
    client: aws_sdk_route53::Client,
    retry: RetryPolicy,
    /// The protections' read, which the crate has no operation for yet.
    protections: super::protections::Protections,
}

impl Route53Dns {
    /// Builds the adapter (one global client, region us-east-1).
    pub fn new(sdk: &Sdk, retry: RetryPolicy) -> Self {
        debug_assert_eq!(ROUTE53_REGION, "us-east-1");
        Self {
            client: sdk.route53(),
            retry,
            protections: super::protections::Protections::new(sdk, retry),
        }
    }
}

/// Lowercase, trailing dot, and Route 53's octal escapes undone (`\052` is
/// how it returns `*` in wildcard names).
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && digits.chars().all(|d| ('0'..='7').contains(&d))
                && let Ok(byte) = u8::from_str_radix(&digits, 8)
            {
                out.push(char::from(byte));
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn strip_prefix<'a>(id: &'a str, prefix: &str) -> &'a str {
    id.strip_prefix(prefix).unwrap_or(id)
}

fn to_record(set: &ResourceRecordSet) -> DnsRecord {
    let mut values: Vec<String> = set
        .resource_records()
        .iter()
        .map(|r| r.value().to_string())
        .collect();
    if let Some(alias) = set.alias_target() {
        values.push(alias.dns_name().to_string());
    }
    DnsRecord {
        name: normalize_name(set.name()),
        rtype: set.r#type().as_str().to_string(),
        ttl: set.ttl(),
        values,
        set_identifier: set.set_identifier().map(str::to_string),
        weight: set.weight(),
        routing: routing_of(set),
    }
}

/// The health-routing part of a record set, when it has one.
fn routing_of(set: &ResourceRecordSet) -> Option<Routing> {
    let failover = set.failover().map(|f| match f {
        ResourceRecordSetFailover::Secondary => FailoverRole::Secondary,
        _ => FailoverRole::Primary,
    });
    let alias = set.alias_target();
    let r = Routing {
        failover,
        health_check_id: set.health_check_id().map(str::to_string),
        alias: alias.map(|a| normalize_name(a.dns_name())),
        evaluate_target_health: alias.is_some_and(|a| a.evaluate_target_health()),
        alias_zone: alias.map(|a| strip_prefix(a.hosted_zone_id(), "/hostedzone/").to_string()),
    };
    (r != Routing::default()).then_some(r)
}

fn to_record_set(r: &DnsRecord, zone_id: &str) -> Result<ResourceRecordSet, String> {
    let mut b = ResourceRecordSet::builder()
        .name(normalize_name(&r.name))
        .r#type(RrType::from(r.rtype.as_str()));
    let routing = r.routing.clone().unwrap_or_default();
    if let Some(target) = &routing.alias {
        // An alias has no TTL and no values of its own.
        let alias = AliasTarget::builder()
            .hosted_zone_id(routing.alias_zone.as_deref().unwrap_or(zone_id))
            .dns_name(target)
            .evaluate_target_health(routing.evaluate_target_health)
            .build()
            .map_err(|e| e.to_string())?;
        b = b.alias_target(alias);
    } else if let Some(ttl) = r.ttl {
        b = b.ttl(ttl);
    }
    if let Some(role) = routing.failover {
        b = b.failover(ResourceRecordSetFailover::from(role.as_str()));
    }
    if let Some(hc) = &routing.health_check_id {
        b = b.health_check_id(hc);
    }
    let values: &[String] = if routing.alias.is_some() {
        &[]
    } else {
        &r.values
    };
    for v in values {
        b = b.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(id) = &r.set_identifier {
        b = b.set_identifier(id);
    }
    if let Some(w) = r.weight {
        b = b.weight(w);
    }
    b.build().map_err(|e| e.to_string())
}

/// Records one listing reads before the adapter falls back to reading the
/// missing names one by one (Route 53 answers up to 300 per page).
const ONE_PAGE: i32 = 300;

#[async_trait]
impl crate::cloud::Dns for Route53Dns {
    async fn read_many(
        &self,
        zone: &HostedZone,
        wanted: &[(String, String)],
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let keys: Vec<(String, String)> = wanted
            .iter()
            .map(|(n, t)| (normalize_name(n), t.to_ascii_uppercase()))
            .collect();
        let c = Call::new(SERVICE, "ListResourceRecordSets", &zone.name, GLOBAL);
        // One page from the apex: a plan's zone is often small enough that
        // this is the whole zone.
        let out = call(&self.retry, c, || {
            self.client
                .list_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .max_items(ONE_PAGE)
                .send()
        })
        .await?;
        let mut found: Vec<DnsRecord> = out
            .resource_record_sets()
            .iter()
            .map(to_record)
            .filter(|r| keys.contains(&(r.name.clone(), r.rtype.to_ascii_uppercase())))
            .collect();
        if out.is_truncated() {
            // A big zone: read what the page did not hold, name by name.
            for (name, rtype) in &keys {
                if !found
                    .iter()
                    .any(|r| &r.name == name && r.rtype.eq_ignore_ascii_case(rtype))
                {
                    found.extend(self.read_records(zone, name, rtype).await?);
                }
            }
        }
        Ok(found)
    }

    async fn find_zone(&self, zone_name: &str) -> Result<Option<HostedZone>, CloudError> {
        let wanted = normalize_name(zone_name);
        let c = Call::new(SERVICE, "ListHostedZonesByName", &wanted, GLOBAL);
        // Zones are sorted by name, so the ones named `wanted` come first; a
        // public and a private zone may share a name: prefer the public one.
        let out = call(&self.retry, c, || {
            self.client
                .list_hosted_zones_by_name()
                .dns_name(&wanted)
                .max_items(10)
                .send()
        })
        .await?;
        let mut matches: Vec<_> = out
            .hosted_zones()
            .iter()
            .filter(|z| normalize_name(z.name()) == wanted)
            .collect();
        matches.sort_by_key(|z| z.config().is_some_and(|c| c.private_zone()));
        Ok(matches.first().map(|z| HostedZone {
            id: strip_prefix(z.id(), "/hostedzone/").to_string(),
            name: normalize_name(z.name()),
        }))
    }

    async fn zone_features(&self, zone: &HostedZone) -> Result<ZoneFeatures, CloudError> {
        let c = Call::new(SERVICE, "GetHostedZone", &zone.name, GLOBAL);
        let out = call(&self.retry, c, || {
            self.client.get_hosted_zone().id(&zone.id).send()
        })
        .await?;
        let features = out.hosted_zone().and_then(|z| z.features());
        Ok(ZoneFeatures {
            accelerated_recovery: (features.and_then(|f| f.accelerated_recovery_status()))
                .map(|s| s.as_str().to_string()),
            failure: (features.and_then(|f| f.failure_reasons()))
                .and_then(|r| r.accelerated_recovery())
                .map(str::to_string),
        })
    }

    async fn protections(&self, zone: &HostedZone) -> Result<Vec<Protection>, CloudError> {
        self.protections.list(zone).await
    }

    async fn list_records(
        &self,
        zone: &HostedZone,
        suffix: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let suffix = if suffix.is_empty() {
            String::new()
        } else {
            normalize_name(suffix)
        };
        let c = Call::new(SERVICE, "ListResourceRecordSets", &zone.name, GLOBAL);
        let mut found: Vec<DnsRecord> = Vec::new();
        let mut seen: HashSet<(String, String, Option<String>)> = HashSet::new();
        let mut start: Option<(String, RrType, Option<String>)> = None;
        loop {
            let out = call(&self.retry, c, || {
                let req = self
                    .client
                    .list_resource_record_sets()
                    .hosted_zone_id(&zone.id);
                match &start {
                    Some((n, t, id)) => req
                        .start_record_name(n)
                        .start_record_type(t.clone())
                        .set_start_record_identifier(id.clone()),
                    None => req,
                }
                .send()
            })
            .await?;
            for rec in out.resource_record_sets().iter().map(to_record) {
                // A page that restarts inside a set of weighted records
                // (no `NextRecordIdentifier`, see below) repeats some.
                let key = (
                    rec.name.clone(),
                    rec.rtype.clone(),
                    rec.set_identifier.clone(),
                );
                if rec.name.ends_with(&suffix) && seen.insert(key) {
                    found.push(rec);
                }
            }
            let next = match (
                out.is_truncated(),
                out.next_record_name(),
                out.next_record_type(),
            ) {
                (true, Some(n), Some(t)) => (
                    n.to_string(),
                    t.clone(),
                    out.next_record_identifier().map(str::to_string),
                ),
                _ => break,
            };
            // Route 53 names the next record's set identifier when a page
            // ends inside a set of weighted (or failover...) records;
            // LocalStack does not (and ignores `StartRecordIdentifier`), so
            // a page could point at its own start forever.
            if start.as_ref() == Some(&next) {
                return Err(c.error(
                    ErrorKind::Server,
                    format!(
                        "the listing does not advance past {} {} (a page ends inside a set \
                         of records with set identifiers, and no NextRecordIdentifier came)",
                        next.0,
                        next.1.as_str()
                    ),
                ));
            }
            start = Some(next);
        }
        Ok(found)
    }

    async fn read_records(
        &self,
        zone: &HostedZone,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let wanted = normalize_name(name);
        let c = Call::new(SERVICE, "ListResourceRecordSets", &wanted, GLOBAL);
        let mut found = Vec::new();
        let mut start: Option<(String, RrType, Option<String>)> =
            Some((wanted.clone(), RrType::from(rtype), None));
        while let Some((start_name, start_type, start_id)) = start.take() {
            let out = call(&self.retry, c, || {
                self.client
                    .list_resource_record_sets()
                    .hosted_zone_id(&zone.id)
                    .start_record_name(&start_name)
                    .start_record_type(start_type.clone())
                    .set_start_record_identifier(start_id.clone())
                    .send()
            })
            .await?;
            let mut past_ours = false;
            for set in out.resource_record_sets() {
                let rec = to_record(set);
                if rec.name == wanted && rec.rtype.eq_ignore_ascii_case(rtype) {
                    found.push(rec);
                } else {
                    // The listing starts at (name, type) and is sorted: the
                    // first other record means there are no more of ours.
                    past_ours = true;
                    break;
                }
            }
            if !past_ours
                && out.is_truncated()
                && let (Some(n), Some(t)) = (out.next_record_name(), out.next_record_type())
            {
                start = Some((
                    n.to_string(),
                    t.clone(),
                    out.next_record_identifier().map(str::to_string),
                ));
            }
        }
        Ok(found)
    }

    async fn apply_changes(
        &self,
        zone: &HostedZone,
        changes: &[DnsChange],
        comment: &str,
    ) -> Result<ChangeInfo, CloudError> {
        let c = Call::new(SERVICE, "ChangeResourceRecordSets", &zone.name, GLOBAL);
        let invalid = |m: String| c.error(ErrorKind::Client, m);
        let mut batch = ChangeBatch::builder();
        if !comment.is_empty() {
            batch = batch.comment(comment);
        }
        for change in changes {
            let (action, record) = match change {
                DnsChange::Upsert(r) => (ChangeAction::Upsert, r),
                DnsChange::Delete(r) => (ChangeAction::Delete, r),
                DnsChange::Create(r) => (ChangeAction::Create, r),
            };
            let set = to_record_set(record, &zone.id).map_err(&invalid)?;
            batch = batch.changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            );
        }
        let batch = batch.build().map_err(|e| invalid(e.to_string()))?;
        let out = call(&self.retry, c, || {
            self.client
                .change_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .change_batch(batch.clone())
                .send()
        })
        .await?;
        change_of(c, out.change_info())
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        let id = strip_prefix(change_id, "/change/");
        let c = Call::new(SERVICE, "GetChange", id, GLOBAL);
        let out = call(&self.retry, c, || self.client.get_change().id(id).send()).await?;
        change_of(c, out.change_info())
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
        let c = Call::new(SERVICE, "ListHealthChecks", "health checks", GLOBAL);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                self.client
                    .list_health_checks()
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
            out.extend(page.health_checks().iter().filter_map(|h| {
                let cfg = h.health_check_config()?;
                Some(from_config(h.id(), h.caller_reference(), cfg))
            }));
            match page.next_marker().filter(|_| page.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => return Ok(out),
            }
        }
    }

    async fn create_health_check(&self, want: &HealthCheck) -> Result<HealthCheck, CloudError> {
        let c = Call::new(SERVICE, "CreateHealthCheck", &want.caller_reference, GLOBAL);
        let cfg = to_config(want).map_err(|m| c.error(ErrorKind::Client, m))?;
        let out = call(&self.retry, c, || {
            self.client
                .create_health_check()
                .caller_reference(&want.caller_reference)
                .health_check_config(cfg.clone())
                .send()
        })
        .await?;
        let h = out
            .health_check()
            .ok_or_else(|| c.error(ErrorKind::Server, "response without HealthCheck"))?;
        Ok(HealthCheck {
            id: h.id().to_string(),
            ..want.clone()
        })
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
        let c = Call::new(SERVICE, "DeleteHealthCheck", id, GLOBAL);
        match call(&self.retry, c, || {
            self.client.delete_health_check().health_check_id(id).send()
        })
        .await
        {
            // Already gone (`NoSuchHealthCheck`): a repeated call is done.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

fn to_config(h: &HealthCheck) -> Result<HealthCheckConfig, String> {
    HealthCheckConfig::builder()
        .r#type(HealthCheckType::from(h.check_type.as_str()))
        .set_ip_address(h.ip.clone())
        .set_fully_qualified_domain_name(h.fqdn.clone())
        .port(i32::from(h.port))
        .resource_path(&h.path)
        .search_string(&h.search)
        .request_interval(i32::from(h.interval))
        .failure_threshold(i32::from(h.failure_threshold))
        .build()
        .map_err(|e| e.to_string())
}

fn from_config(id: &str, reference: &str, cfg: &HealthCheckConfig) -> HealthCheck {
    let small = |v: Option<i32>, d: u16| v.and_then(|v| u16::try_from(v).ok()).unwrap_or(d);
    HealthCheck {
        id: id.to_string(),
        caller_reference: reference.to_string(),
        check_type: cfg.r#type().as_str().to_string(),
        ip: cfg.ip_address().map(str::to_string),
        fqdn: cfg.fully_qualified_domain_name().map(str::to_string),
        port: small(cfg.port(), 80),
        path: cfg.resource_path().unwrap_or("/").to_string(),
        search: cfg.search_string().unwrap_or_default().to_string(),
        interval: small(cfg.request_interval(), 30),
        failure_threshold: small(cfg.failure_threshold(), 3),
    }
}

/// A change as Route 53 answered it (its id without `/change/`, whether it
/// is in sync); an answer without one is a server's error.
fn change_of(
    c: Call<'_>,
    info: Option<&aws_sdk_route53::types::ChangeInfo>,
) -> Result<ChangeInfo, CloudError> {
    let info = info.ok_or_else(|| c.error(ErrorKind::Server, "response without ChangeInfo"))?;
    Ok(ChangeInfo {
        id: strip_prefix(info.id(), "/change/").to_string(),
        in_sync: *info.status() == ChangeStatus::Insync,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("API.Example.com"), "api.example.com.");
        assert_eq!(normalize_name("\\052.example.com."), "*.example.com.");
        assert_eq!(normalize_name("a\\05"), "a\\05.");
    }
}
