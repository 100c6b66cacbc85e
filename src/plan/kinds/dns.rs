//! `[[dns]]`: a record switched to the target: by an UPSERT of its value,
//! by weights, or on the data plane (health-checked failover records that
//! read a control object per region). A record may `follow` another
//! resource's endpoint instead of naming a target per region.

pub mod setup;
pub mod switching;

use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::traffic::{ControlAt, Endpoint, Points, Resolving, Switching, resolved, same_name};
use super::{Kind, Resource, Shown, bounded};
use crate::cloud::{CloudError, Clouds, DnsRecord};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::{Scope, did_you_mean, fqdn, known_list};

/// How a DNS record is switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchMode {
    /// UPSERT the record's value to the target region's target.
    Upsert,
    /// One weighted record per region (set identifier = region): active 100, others 0.
    Weighted,
    /// A data-plane switch: Route 53 failover records, each region's
    /// following a health check that reads a control object in that region
    /// (`controls`). Failing over writes the controls; no Route 53 API call.
    HealthCheck,
}

impl SwitchMode {
    /// The plan's spelling (`upsert`, `weighted`, `health-check`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Weighted => "weighted",
            Self::HealthCheck => "health-check",
        }
    }

    /// Whether switching needs Route 53's API (its control plane, hosted in
    /// us-east-1 alone).
    pub fn needs_route53_api(self) -> bool {
        !matches!(self, Self::HealthCheck)
    }
}

/// A `[[dns]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsSpec {
    /// Resource id.
    pub id: String,
    /// Hosted zone name (`example.com.`).
    pub zone: String,
    /// Record name (`api.example.com.`).
    pub name: String,
    /// Record type (`CNAME`, `A`, `AAAA`).
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// How to switch.
    #[serde(default = "default_switch")]
    pub switch: SwitchMode,
    /// Record value per region.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub targets: PerRegion,
    /// Take the value from this database resource's primary endpoint instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// `switch = "health-check"`: the control object per region
    /// (`s3://bucket/key`, a bucket in that region).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub controls: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn default_ttl() -> i64 {
    60
}
fn default_switch() -> SwitchMode {
    SwitchMode::Upsert
}
impl Kind for DnsSpec {
    const KEYS: &'static [&'static str] = &[
        "id", "zone", "name", "type", "ttl", "switch", "targets", "follows", "controls", "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Traffic);
    const REGIONS_KEY: &'static str = "targets";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Traffic(&switching::Route53Zones);
}

impl Resource for DnsSpec {
    fn regions(&self) -> Option<&PerRegion> {
        // No targets at all is reported once by its own check ("neither
        // `targets` nor `follows`"), not per region.
        (self.follows.is_none() && !self.targets.is_empty()).then_some(&self.targets)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        let target = match (&self.follows, self.switch) {
            (Some(db), _) => format!("endpoint of {db} here"),
            (None, SwitchMode::Upsert) => self.targets[region].clone(),
            (None, SwitchMode::Weighted) => {
                format!("{} (weighted, set id {region})", self.targets[region])
            }
            (None, SwitchMode::HealthCheck) => format!(
                "{} (health-check, control {})",
                self.targets[region],
                self.controls.get(region).map(String::as_str).unwrap_or("-")
            ),
        };
        format!(
            "dns      {:<22} {} {} → {}",
            self.id, self.name, self.rtype, target
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        let zone = fqdn(&self.zone);
        let name = fqdn(&self.name);
        if name != zone && !name.ends_with(&format!(".{zone}")) {
            s.error(
                path!["name"],
                format!("record `{}` is not inside zone `{}`", self.name, self.zone),
                "the record name must end with the zone name",
            );
        }
        let rtype = self.rtype.as_str();
        if !matches!(rtype, "A" | "AAAA" | "CNAME") {
            s.error(
                path!["type"],
                format!("record type `{rtype}` is not supported"),
                "use A, AAAA or CNAME (upper case)",
            );
        }
        if !(0..=604_800).contains(&self.ttl) {
            s.error(
                path!["ttl"],
                format!("TTL {} is out of range", self.ttl),
                "use 0 to 604800 seconds; failover records usually use 60 or less",
            );
        }
        match (&self.follows, self.targets.is_empty()) {
            (Some(_), false) => s.error(path!["follows"], format!("dns `{}` has both `follows` and `targets`", self.id), "use `targets` for fixed values per region, or `follows` to track a database's primary endpoint, not both"),
            (None, true) => s.error(path![], format!("dns `{}` has neither `targets` nor `follows`", self.id), "add `targets = { region = \"value\", ... }` or `follows = \"<database id>\"`"),
            _ => {}
        }
        if let Some(f) = &self.follows {
            self.check_follows(s, f);
        }
        self.check_controls(s);
        if rtype == "CNAME" && name == zone {
            s.error(
                path!["name"],
                "a CNAME cannot be at the zone apex",
                "use an A/AAAA record (or an alias) for the apex",
            );
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Traffic(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        use crate::cloud::DnsRecord;
        let f = w.fake;
        if !f.has_zone(&self.zone) {
            f.add_zone(&self.zone);
        }
        let value = match (&self.follows, self.targets.get(w.home)) {
            (_, Some(t)) => t.clone(),
            (Some(other), None) => w.endpoint(other).unwrap_or_default(),
            (None, None) => return,
        };
        match self.switch {
            SwitchMode::Weighted => {
                for (region, target) in &self.targets {
                    f.put_record(
                        &self.zone,
                        DnsRecord {
                            name: self.name.clone(),
                            rtype: self.rtype.clone(),
                            ttl: Some(self.ttl),
                            values: vec![target.clone()],
                            set_identifier: Some(region.clone()),
                            weight: Some(if region == w.home { 100 } else { 0 }),
                            routing: None,
                        },
                    );
                }
            }
            // Prepared afterwards, as `drctl dns prepare` prepares it.
            SwitchMode::HealthCheck => w.data_plane.set(true),
            SwitchMode::Upsert => f.put_record(
                &self.zone,
                DnsRecord::simple(self.name.clone(), &self.rtype, Some(self.ttl), vec![value]),
            ),
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        // Its change reaching INSYNC is the floor's own last term.
        Vec::new()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, zone: &str) {
        let first = |v: &str, or: &'static str| -> String {
            v.trim_end_matches('.')
                .split('.')
                .next()
                .unwrap_or(or)
                .to_string()
        };
        self.zone = zone.to_string();
        self.name = format!("{}{tag}.{zone}", first(&self.name, "n"));
        for v in self.targets.values_mut() {
            *v = format!("{}{tag}.{zone}", first(v, "t"));
        }
    }
}

#[async_trait]
impl Points for DnsSpec {
    fn follows(&self) -> Option<&str> {
        self.follows.as_deref()
    }

    fn names(&self) -> (&str, &str, &str) {
        (&self.name, &self.rtype, &self.zone)
    }

    fn drilled(&self) -> bool {
        // `drill-dns` and `drill-control` rehearse every switch mode.
        true
    }

    fn read_by_api(&self) -> bool {
        self.switch.needs_route53_api()
    }

    /// A data-plane record is resolved (no Route 53 API call: it is what
    /// the switch changes, and it works with us-east-1 down); another is
    /// read through Route 53's API, its zone first.
    async fn read(
        &self,
        clouds: &Clouds,
        limit: Duration,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError> {
        let name = self.name.as_str();
        if !self.switch.needs_route53_api() {
            return resolved(clouds, limit, (&self.zone, name, &self.rtype)).await;
        }
        let find = (
            "route53",
            "ListHostedZonesByName",
            self.zone.as_str(),
            "global",
        );
        let Some(zone) = bounded(limit, find, clouds.dns.find_zone(&self.zone)).await? else {
            return Ok(None);
        };
        let list = ("route53", "ListResourceRecordSets", name, "global");
        let sets = clouds.dns.read_records(&zone, name, &self.rtype);
        Ok(Some(bounded(limit, list, sets).await?))
    }

    /// A weighted record points where its heaviest set with a weight
    /// points; another, where its first value does.
    fn points_to(
        &self,
        plan: &Plan,
        records: &[DnsRecord],
        endpoint: Endpoint<'_>,
    ) -> (Vec<String>, Option<String>) {
        let region_of = |value: &str| -> Option<String> {
            match &self.follows {
                Some(db) => endpoint(db, value),
                None => (plan.regions().iter())
                    .find(|r| self.targets.get(*r).is_some_and(|t| same_name(t, value)))
                    .cloned(),
            }
        };
        match self.switch {
            SwitchMode::Weighted => {
                let values = (records.iter())
                    .map(|r| {
                        format!(
                            "{}={}:{}",
                            r.set_identifier.as_deref().unwrap_or("-"),
                            r.weight.unwrap_or(0),
                            r.values.join(",")
                        )
                    })
                    .collect();
                let top = (records.iter())
                    .filter(|r| r.weight.unwrap_or(0) > 0)
                    .max_by_key(|r| r.weight);
                let points = top
                    .and_then(|r| r.values.first())
                    .and_then(|v| region_of(v));
                (values, points)
            }
            // A data-plane record's state is what it resolves to (read by
            // the resolver, not Route 53's API): one answer, like an
            // upsert's.
            SwitchMode::Upsert | SwitchMode::HealthCheck => {
                let values: Vec<String> = records.iter().flat_map(|r| r.values.clone()).collect();
                let points = values.first().and_then(|v| region_of(v));
                (values, points)
            }
        }
    }

    fn controls(&self) -> Vec<ControlAt<'_>> {
        if self.switch != SwitchMode::HealthCheck {
            return Vec::new();
        }
        (self.controls.iter())
            .map(|(region, url)| ControlAt {
                site: region,
                via: region,
                url,
            })
            .collect()
    }

    fn resolving(&self) -> Option<&dyn Resolving> {
        (self.switch == SwitchMode::HealthCheck).then_some(self as &dyn Resolving)
    }

    fn switching(&self) -> Option<&dyn Switching> {
        self.switch
            .needs_route53_api()
            .then_some(self as &dyn Switching)
    }
}

impl DnsSpec {
    /// A record that follows another resource: one whose endpoint it may
    /// follow, as a host name, switched by upsert.
    fn check_follows(&self, s: &mut Scope<'_, '_, '_>, f: &str) {
        if !s.can_follow(f) {
            let dbs = s.followable();
            let hint = match did_you_mean(f, dbs.iter().copied()) {
                Some(m) => format!(
                    "did you mean `{m}`? databases in this plan: {}",
                    known_list(dbs)
                ),
                None => format!(
                    "`follows` names a [[database]] of this plan; databases: {}",
                    known_list(dbs)
                ),
            };
            s.error(
                path!["follows"],
                format!("dns `{}` follows unknown database `{f}`", self.id),
                hint,
            );
        } else if self.rtype != "CNAME" {
            s.error(
                path!["type"],
                format!(
                    "dns `{}` follows a database but is of type {}",
                    self.id, self.rtype
                ),
                "a database endpoint is a host name: use type = \"CNAME\"",
            );
        }
        if self.switch == SwitchMode::Weighted {
            s.error(
                path!["switch"],
                format!(
                    "dns `{}` follows a database with weighted switching",
                    self.id
                ),
                "a record that follows a database is switched by upsert",
            );
        }
    }

    /// A data-plane switch needs fixed targets and one control object per
    /// region; other modes take no controls.
    fn check_controls(&self, s: &mut Scope<'_, '_, '_>) {
        if self.switch != SwitchMode::HealthCheck {
            if !self.controls.is_empty() {
                s.error(
                    path!["controls"],
                    format!("dns `{}` has `controls` but switches by {}", self.id, self.switch.as_str()),
                    "controls belong to a data-plane switch: set switch = \"health-check\", or remove them",
                );
            }
            return;
        }
        if self.follows.is_some() {
            s.error(
                path!["follows"],
                format!("dns `{}` follows a database with a health-check switch", self.id),
                "a data-plane switch's records are prepared ahead with a fixed target per region: use `targets`",
            );
        }
        let regions: Vec<String> = s.regions().iter().map(|r| r.to_string()).collect();
        for region in &regions {
            match self.controls.get(region) {
                None => s.error(
                    path!["controls"],
                    format!("dns `{}` has no control for region `{region}`", self.id),
                    format!("add `{region} = \"s3://BUCKET-IN-{region}/KEY\"` to its controls: each region's health check reads its own control"),
                ),
                Some(url) => match crate::cloud::ObjectUrl::parse(url) {
                    Ok(u) if u.scheme == crate::cloud::ObjectScheme::S3 && !u.key.is_empty() => {}
                    _ => s.error(
                        path!["controls", region.as_str()],
                        format!("control `{url}` of dns `{}` is not an S3 object URL", self.id),
                        "write s3://BUCKET/KEY with a bucket in that region (Route 53 health checks read it over HTTPS)",
                    ),
                },
            }
        }
        for region in self.controls.keys() {
            if !regions.contains(region) {
                let known: Vec<&str> = regions.iter().map(String::as_str).collect();
                s.key_error(
                    path!["controls", region.as_str()],
                    format!(
                        "dns `{}` has a control for `{region}`, which is not one of the plan's regions",
                        self.id
                    ),
                    format!("the plan's regions are {}", known_list(&known)),
                );
            }
        }
    }
}
