//! `[[cloud_dns]]`: a Google Cloud DNS record set in a managed zone,
//! switched to the target's value by a failover (`switch-dns`: one change
//! of its managed zone, with the plan's other records there, then
//! `verify-dns`).
//!
//! Records mode, as `[[dns]]`'s `upsert` is for Route 53: the record holds
//! one value per region (`targets`), and a failover swaps the value it
//! holds for the target's in one atomic Cloud DNS change of its managed
//! zone whose deletions are the record sets exactly as read (Cloud DNS's
//! compare-and-swap), through the traffic role's records mode
//! ([`switching`]), then waits until Cloud DNS says the change is `done`.
//!
//! Health-check mode (`switch = "health-check"`), as `[[dns]]`'s is for
//! Route 53: a data-plane switch. The record set carries a `primaryBackup`
//! routing policy (primary: the home region's value; backups: the other
//! regions'), whose targets are health-checked; each region's serving
//! endpoint answers its health path from that region's control object
//! (`controls`, one `gs://` object per region; drained fails closed). A
//! failover writes the controls (`switch-control`) and resolves the
//! name until it answers the target (`verify-resolution`, through its
//! verification by resolution, [`policy`]), with no Cloud DNS API call
//! on its path: the control plane may be what is down. Its setup is read
//! beside the path, bounded and never a reason to stop: once by preflight
//! and `status` (a policy that cannot answer the target refuses the
//! failover), and again by a wait whose answer stays wrong. `drctl dns
//! prepare` makes the controls and the routing policy on a calm day.
//!
//! Why its own kind rather than a `[[dns]]` with a provider key: it is
//! named by project and managed zone (a zone's name, not its DNS name), its
//! API is Google's, global and with other limits, and its zone's changes
//! are one change polled to `done` rather than Route 53's batches and
//! `GetChange`.
//! A traffic kind ([`Shown::Traffic`]): `status` and `watch` read where
//! it points through its role ([`Points`]): a records-mode record by its
//! value, through Cloud DNS's API (global: no region's outage takes it);
//! a health-check record as it resolves, and by its controls, each read
//! through its region.

pub mod policy;
pub mod switching;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cloud_sql::valid_project;
use super::traffic::{ControlAt, Endpoint, Points, Resolving, Switching, resolved, same_name};
use super::{Kind, Resource, Shown, bounded};
use crate::cloud::{CloudError, Clouds, DnsRecord, ErrorKind};
use crate::path;
use crate::plan::Plan;
use crate::plan::sites::gcp_region;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::{Scope, fqdn};

/// A `[[cloud_dns]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudDnsSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The GCP project that holds the managed zone.
    pub project: String,
    /// The Cloud DNS managed zone's name (`orders-zone`, not its DNS name).
    pub zone: String,
    /// The record's fully qualified name (`orders.gcp.example.com.`).
    pub name: String,
    /// Record type (`CNAME`, `A`, `AAAA`).
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// The record's value per GCP region.
    pub targets: PerRegion,
    /// How a failover switches it: `records` (one Cloud DNS change) or
    /// `health-check` (the controls; no Cloud DNS call).
    #[serde(default)]
    pub switch: CloudSwitch,
    /// Health-check mode: the control object (`gs://bucket/key`) each GCP
    /// region's serving endpoint answers its health path from.
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub controls: PerRegion,
    /// Health-check mode: the Compute health check that probes the serving
    /// addresses (`projects/P/global/healthChecks/NAME`), recorded on the
    /// record set's routing policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan's sites (set when the plan is loaded): which of its
    /// targets, keyed by GCP region, a site of the plan means.
    #[serde(skip)]
    pub sites: crate::plan::sites::Sites,
}

fn default_ttl() -> i64 {
    60
}

/// How a `[[cloud_dns]]` record is switched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloudSwitch {
    /// One atomic Cloud DNS change to the target's value (control plane).
    #[default]
    Records,
    /// A data-plane switch: a `primaryBackup` routing policy whose targets'
    /// health follows the control objects; a failover writes the controls.
    HealthCheck,
}

impl CloudSwitch {
    /// The plan's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Records => "records",
            Self::HealthCheck => "health-check",
        }
    }
}

/// Whether `hc` names a Compute health check as a routing policy takes it
/// (`projects/P/global/healthChecks/NAME` or `.../regions/R/healthChecks/NAME`,
/// optionally as a full `https://` URL).
pub fn valid_health_check(hc: &str) -> bool {
    let path = hc
        .strip_prefix("https://www.googleapis.com/compute/v1/")
        .or_else(|| hc.strip_prefix("https://compute.googleapis.com/compute/v1/"))
        .unwrap_or(hc);
    let parts: Vec<&str> = path.split('/').collect();
    let named = |p: &str| !p.is_empty() && valid_zone(p);
    match parts.as_slice() {
        ["projects", p, "global", "healthChecks", n] => valid_project(p) && named(n),
        ["projects", p, "regions", r, "healthChecks", n] => {
            valid_project(p) && gcp_region(r) && named(n)
        }
        _ => false,
    }
}

impl Kind for CloudDnsSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "project",
        "zone",
        "name",
        "type",
        "ttl",
        "targets",
        "switch",
        "controls",
        "health_check",
        "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Traffic);
    const REGIONS_KEY: &'static str = "targets";
    const CLOUD: super::Cloud = super::Cloud::Gcp;
    const ROLE: super::Role = super::Role::Traffic(&switching::CloudDnsZones);
}

/// Whether `zone` is a Cloud DNS managed zone name: 1 to 63 lowercase
/// letters, digits or hyphens, starting with a letter, not ending with a
/// hyphen.
pub fn valid_zone(zone: &str) -> bool {
    crate::plan::sites::gcp_name(zone, 1..=63)
}

/// Whether `name` is a fully qualified DNS name with its trailing dot
/// (`orders.gcp.example.com.`): labels of 1 to 63 letters, digits,
/// hyphens or underscores, not starting or ending with a hyphen.
pub fn valid_fqdn(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// Whether `value` is a record value of type `rtype` as Cloud DNS takes
/// it: a fully qualified host name for a CNAME, an address for A/AAAA.
pub fn valid_value(rtype: &str, value: &str) -> bool {
    match rtype {
        "CNAME" => valid_fqdn(value),
        "A" => value.parse::<std::net::Ipv4Addr>().is_ok(),
        "AAAA" => value.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

impl CloudDnsSpec {
    /// The zone a resolver looks its name up in when no servers are
    /// configured: its parent name.
    pub fn resolver_zone(&self) -> &str {
        self.name.split_once('.').map_or(".", |(_, rest)| rest)
    }

    /// Health-check mode's keys: controls for every region of `targets`,
    /// each a `gs://` object; a valid health check; an address record (a
    /// health-checked target is an IP address). Other modes take none.
    fn check_controls(&self, s: &mut Scope<'_, '_, '_>) {
        if self.switch != CloudSwitch::HealthCheck {
            self.check_no_controls(s);
            return;
        }
        if !matches!(self.rtype.as_str(), "A" | "AAAA") {
            s.error(
                path!["type"],
                format!(
                    "cloud_dns `{}`: a health-check switch routes a {} record",
                    self.id, self.rtype
                ),
                "Cloud DNS health-checks IP addresses (primaryBackup's external endpoints): use an A or AAAA record",
            );
        }
        for region in self.targets.keys() {
            self.check_control(s, region);
        }
        for region in self.controls.keys() {
            if !self.targets.contains_key(region) {
                let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
                s.key_error(
                    path!["controls", region.as_str()],
                    format!(
                        "cloud_dns `{}` has a control for `{region}`, which has no target",
                        self.id
                    ),
                    format!(
                        "key controls as its targets: {}",
                        crate::plan::validate::known_list(&known)
                    ),
                );
            }
        }
        if let Some(hc) = &self.health_check
            && !valid_health_check(hc)
        {
            s.error(
                path!["health_check"],
                format!(
                    "cloud_dns `{}`: `{hc}` is not a Compute health check",
                    self.id
                ),
                "write projects/PROJECT/global/healthChecks/NAME (the health check that probes the serving addresses)",
            );
        }
    }

    /// Records mode's keys: a record switched by one Cloud DNS change takes
    /// no controls and no health check (they belong to a data-plane switch).
    fn check_no_controls(&self, s: &mut Scope<'_, '_, '_>) {
        if !self.controls.is_empty() {
            s.error(
                path!["controls"],
                format!(
                    "cloud_dns `{}` has `controls` but switches by {}",
                    self.id,
                    self.switch.as_str()
                ),
                "controls belong to a data-plane switch: set switch = \"health-check\", or remove them",
            );
        }
        if self.health_check.is_some() {
            s.error(
                path!["health_check"],
                format!(
                    "cloud_dns `{}` has `health_check` but switches by {}",
                    self.id,
                    self.switch.as_str()
                ),
                "a health check belongs to a data-plane switch: set switch = \"health-check\", or remove it",
            );
        }
    }

    /// Health-check mode's control for `region` (a region of `targets`):
    /// present, and a `gs://` object URL with a key.
    fn check_control(&self, s: &mut Scope<'_, '_, '_>, region: &str) {
        match self.controls.get(region) {
            None => s.error(
                path!["controls"],
                format!("cloud_dns `{}` has no control for region `{region}`", self.id),
                format!(
                    "add `{region} = \"gs://BUCKET/KEY\"` to its controls: {region}'s serving endpoint answers its health path from it"
                ),
            ),
            Some(url) => match crate::cloud::ObjectUrl::parse(url) {
                Ok(u) if u.scheme == crate::cloud::ObjectScheme::Gcs && !u.key.is_empty() => {}
                _ => s.error(
                    path!["controls", region],
                    format!(
                        "control `{url}` of cloud_dns `{}` is not a GCS object URL",
                        self.id
                    ),
                    "write gs://BUCKET/KEY (a Cloud Storage object the region's serving endpoint reads)",
                ),
            },
        }
    }

    /// One of `targets`: keyed by a GCP region, and (when set) a value of
    /// the record's type.
    fn check_target(&self, s: &mut Scope<'_, '_, '_>, region: &str, value: &str) {
        let rtype = self.rtype.as_str();
        if !gcp_region(region) {
            s.error(
                path!["targets", region],
                format!(
                    "cloud_dns `{}` has a target for {region}, not a GCP region",
                    self.id
                ),
                "key targets by the plan's GCP regions (us-central1, us-east4)",
            );
        }
        if !value.trim().is_empty() && !valid_value(rtype, value) {
            let hint = match rtype {
                "CNAME" => format!(
                    "a CNAME's value is a host name with its trailing dot: `{}`",
                    fqdn(value.trim())
                ),
                _ => format!("an {rtype} record's value is an IP address"),
            };
            s.error(
                path!["targets", region],
                format!(
                    "cloud_dns `{}`: `{value}` in {region} is not a value of a {rtype} record",
                    self.id
                ),
                hint,
            );
        }
    }

    /// The record's value when `region` serves.
    pub fn target(&self, region: &str) -> Option<&str> {
        self.targets.get(self.sites.gcp(region)).map(String::as_str)
    }

    /// The region whose target a record set's values name, if one does.
    pub fn region_of(&self, rrdatas: &[String]) -> Option<&str> {
        let norm = |v: &str| v.trim_end_matches('.').to_ascii_lowercase();
        let [value] = rrdatas else { return None };
        (self.targets.iter())
            .find(|(_, t)| norm(t) == norm(value))
            .map(|(r, _)| r.as_str())
    }
}

impl Resource for CloudDnsSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.targets)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        let mode = match self.switch {
            CloudSwitch::Records => String::new(),
            CloudSwitch::HealthCheck => format!(
                ", health-check: control {}",
                self.controls
                    .get(self.sites.gcp(region))
                    .map_or("-", String::as_str)
            ),
        };
        format!(
            "cloud_dns {:<21} {} {} → {} (zone {}, project {}{mode})",
            self.id,
            self.name,
            self.rtype,
            self.target(region).unwrap_or("-"),
            self.zone,
            self.project
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        super::cloud_sql::check_project(s, &self.id, &self.project);
        if !valid_zone(&self.zone) {
            let hint = if self.zone.contains('.') {
                "`zone` is the managed zone's name (`gcloud dns managed-zones list`), not its DNS name: up to 63 lowercase letters, digits and hyphens, starting with a letter"
            } else {
                "up to 63 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen"
            };
            s.error(
                path!["zone"],
                format!(
                    "cloud_dns `{}`: `{}` is not a Cloud DNS managed zone name",
                    self.id, self.zone
                ),
                hint,
            );
        }
        if !valid_fqdn(&self.name) {
            s.error(
                path!["name"],
                format!(
                    "cloud_dns `{}`: `{}` is not a fully qualified record name",
                    self.id, self.name
                ),
                format!(
                    "write the name with its trailing dot, as Cloud DNS keeps it: `{}`",
                    fqdn(self.name.trim())
                ),
            );
        }
        let rtype = self.rtype.as_str();
        if !matches!(rtype, "A" | "AAAA" | "CNAME") {
            s.error(
                path!["type"],
                format!(
                    "cloud_dns `{}`: record type `{rtype}` is not supported",
                    self.id
                ),
                "use A, AAAA or CNAME (upper case)",
            );
        }
        if !(0..=604_800).contains(&self.ttl) {
            s.error(
                path!["ttl"],
                format!("cloud_dns `{}`: TTL {} is out of range", self.id, self.ttl),
                "use 0 to 604800 seconds; failover records usually use 60 or less",
            );
        }
        for (region, value) in &self.targets {
            self.check_target(s, region, value);
        }
        self.check_controls(s);
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Traffic(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let f = w.fake;
        let zone_key = (self.project.clone(), self.zone.clone());
        if !f.state().cloud_zones.contains_key(&zone_key) {
            // The zone serves the record's parent name.
            let parent = self.name.split_once('.').map_or(".", |(_, rest)| rest);
            f.add_cloud_zone(&self.project, &self.zone, parent);
        }
        if self.switch == CloudSwitch::HealthCheck {
            // Each region's serving address answers its health path from
            // that region's control, as the world's endpoints do.
            for (region, value) in &self.targets {
                let control = self.controls.get(region);
                if let Some(url) = control.and_then(|c| crate::cloud::ObjectUrl::parse(c).ok()) {
                    f.serve_control_at(value, region, &url);
                }
            }
        }
        let Some(value) = self.target(w.home) else {
            return;
        };
        if f.cloud_record(&self.project, &self.zone, &self.name, &self.rtype)
            .is_none()
        {
            f.put_cloud_record(
                &self.project,
                &self.zone,
                crate::cloud::CloudRecordSet {
                    name: self.name.clone(),
                    rtype: self.rtype.clone(),
                    ttl: self.ttl,
                    rrdatas: vec![value.to_string()],
                    routed: false,
                    primary_backup: None,
                },
            );
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        // Its change is polled to done, not timed by the model.
        Vec::new()
    }

    fn attach_sites(&mut self, sites: &crate::plan::sites::Sites) {
        self.sites = sites.clone();
    }

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        let tag = tag.to_lowercase();
        self.zone.push_str(&tag);
        self.name = match self.name.split_once('.') {
            Some((first, rest)) => format!("{first}{tag}.{rest}"),
            None => format!("{}{tag}", self.name),
        };
    }
}

#[async_trait]
impl Points for CloudDnsSpec {
    fn follows(&self) -> Option<&str> {
        // A Cloud DNS record names its values per region; it follows no
        // resource's endpoint.
        None
    }

    fn names(&self) -> (&str, &str, &str) {
        (&self.name, &self.rtype, &self.zone)
    }

    fn drilled(&self) -> bool {
        // A records-mode record has its drill record (`drill-dns`);
        // a data-plane record's controls are not rehearsed yet.
        self.switch == CloudSwitch::Records
    }

    fn read_by_api(&self) -> bool {
        // Cloud DNS's API is global: no region's outage takes it away.
        false
    }

    /// A health-check record is resolved: what clients get, with no Cloud
    /// DNS API call (its policy's answer is what its controls steer). A
    /// records-mode record is read through Cloud DNS's API.
    async fn read(
        &self,
        clouds: &Clouds,
        limit: Duration,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError> {
        let name = self.name.as_str();
        if self.switch == CloudSwitch::HealthCheck {
            return resolved(clouds, limit, (self.resolver_zone(), name, &self.rtype)).await;
        }
        let ask = ("clouddns", "resourceRecordSets.list", name, "global");
        let read = (clouds.cloud_dns).read_record_set(&self.project, &self.zone, name, &self.rtype);
        match bounded(limit, ask, read).await {
            // A routed record set's plain values are none: it names no
            // region.
            Ok(set) => Ok(Some(
                (set.into_iter())
                    .map(|r| DnsRecord::simple(name.into(), &r.rtype, Some(r.ttl), r.rrdatas))
                    .collect(),
            )),
            // Cloud DNS answers a zone that does not exist as not found.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// It points at the site whose target its one value is (resolved, for
    /// a health-check record: the region its controls let serve).
    fn points_to(
        &self,
        plan: &Plan,
        records: &[DnsRecord],
        _: Endpoint<'_>,
    ) -> (Vec<String>, Option<String>) {
        let values: Vec<String> = records.iter().flat_map(|r| r.values.clone()).collect();
        let points = match values.as_slice() {
            [one] => (self.targets.iter())
                .find(|(_, t)| same_name(t, one))
                .map(|(gcp, _)| self.sites.site_of(gcp).to_string())
                .filter(|site| plan.regions().contains(site)),
            _ => None,
        };
        (values, points)
    }

    fn controls(&self) -> Vec<ControlAt<'_>> {
        if self.switch != CloudSwitch::HealthCheck {
            return Vec::new();
        }
        (self.controls.iter())
            .map(|(gcp, url)| ControlAt {
                site: self.sites.site_of(gcp),
                via: gcp,
                url,
            })
            .collect()
    }

    fn resolving(&self) -> Option<&dyn Resolving> {
        (self.switch == CloudSwitch::HealthCheck).then_some(self as &dyn Resolving)
    }

    fn switching(&self) -> Option<&dyn Switching> {
        (self.switch == CloudSwitch::Records).then_some(self as &dyn Switching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A health-check record is read as it resolves (what `status` and
    /// `watch` show of it): home's address once `dns prepare` made its
    /// policy, the target's once the controls serve it, each pointing at
    /// its region.
    #[tokio::test]
    async fn a_health_check_record_is_read_where_it_resolves() {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = crate::cloud::fake::FakeCloud::new();
        super::super::seed_plan(&f, &plan);
        let clouds = f.clouds();
        let d = &plan.spec.cloud_dns[0];
        Resolving::prepare(d, &clouds, &plan, None)
            .await
            .expect("dns prepare");
        let none = |_: &str, _: &str| None;
        let at = || async {
            let read = d.read(&clouds, Duration::from_secs(5)).await.expect("read");
            d.points_to(&plan, &read.unwrap_or_default(), &none)
        };
        assert_eq!(
            at().await,
            (
                vec!["10.0.1.1".to_string()],
                Some("us-central1".to_string())
            )
        );
        for (region, url) in &d.controls {
            let state = if region == "us-east4" {
                "serve"
            } else {
                "drain"
            };
            let url = crate::cloud::ObjectUrl::parse(url).expect("url");
            f.state().objects.insert(
                url.to_string(),
                format!("state={state}").into_bytes().into(),
            );
        }
        assert_eq!(
            at().await,
            (vec!["10.0.2.2".to_string()], Some("us-east4".to_string()))
        );
    }

    #[test]
    fn zones_names_and_values_follow_cloud_dns_rules() {
        for ok in ["orders-zone", "a", "z1-2"] {
            assert!(valid_zone(ok), "{ok}");
        }
        for bad in [
            "",
            "Orders",
            "1zone",
            "zone-",
            "gcp.example.com.",
            &"a".repeat(64),
        ] {
            assert!(!valid_zone(bad), "{bad}");
        }
        for ok in ["orders.gcp.example.com.", "a.", "_x.example.com."] {
            assert!(valid_fqdn(ok), "{ok}");
        }
        for bad in [
            "orders.gcp.example.com",
            ".",
            "a..b.",
            "-a.example.com.",
            "",
        ] {
            assert!(!valid_fqdn(bad), "{bad}");
        }
        assert!(valid_value("CNAME", "api-use4.example.com."));
        assert!(!valid_value("CNAME", "api-use4.example.com"));
        assert!(valid_value("A", "10.0.0.1") && !valid_value("A", "host."));
        assert!(valid_value("AAAA", "2001:db8::1"));
    }

    #[test]
    fn a_record_set_names_the_region_whose_target_it_holds() {
        let spec = CloudDnsSpec {
            id: "orders-dns".into(),
            project: "drctl-emu".into(),
            zone: "orders-zone".into(),
            name: "orders.gcp.example.com.".into(),
            rtype: "CNAME".into(),
            ttl: 60,
            targets: [
                ("us-central1".to_string(), "a-usc1.example.com.".to_string()),
                ("us-east4".to_string(), "a-use4.example.com.".to_string()),
            ]
            .into_iter()
            .collect(),
            switch: CloudSwitch::Records,
            controls: Default::default(),
            health_check: None,
            after: vec![],
            sites: Default::default(),
        };
        assert_eq!(
            spec.region_of(&["A-USE4.example.com".into()]),
            Some("us-east4")
        );
        assert_eq!(spec.region_of(&["other.example.com.".into()]), None);
        assert_eq!(
            spec.region_of(&["a-use4.example.com.".into(), "x.".into()]),
            None
        );
    }
}
