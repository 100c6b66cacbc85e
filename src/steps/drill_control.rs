//! `drill-control`: a shadow drill of a data-plane switch
//! (`switch = "health-check"` records). It rehearses the switch itself,
//! not a Route 53 change: a drill copy of the whole setup is made beside
//! production's, switched to the target, and verified by resolution, so
//! production's records, health checks and controls are never written.
//!
//! For each record, with `<short>` the drill's short id
//! ([`crate::steps::drill_names::short_id`]):
//!
//! * **drill controls**: one per region, `<production control>.drill-<short>`
//!   (same bucket, so the same region's endpoint writes it and the health
//!   checkers may read it), the target's `serve` and the others `drain`,
//!   written by the switch's own writer (`switch_control`: bounded, one
//!   region at a time not waited for, If-Match, fencing token);
//! * **drill health checks**: one per region, a copy of production's (found
//!   through Route 53's API, which a drill may use: drills run on calm days)
//!   reading the drill control instead. Without production's setup the
//!   drill fails before creating anything, naming `drctl dns prepare`;
//! * **drill failover records** `drill-<short>.<name>` (and the chain's
//!   levels `drill-<short>.drctl-failover-K.<name>`), made by `dns_setup`'s
//!   code from the drill health checks, with set identifiers of the drill's
//!   own (LocalStack's DELETE removes every record sharing a set identifier:
//!   production's are never reused);
//! * then the drill names are resolved (`resolution`'s code, as `verify-resolution` does) until
//!   they name the target N times in a row: the drill's RTO clock stops at
//!   the first of them.
//!
//! Every piece is journaled as a drill temporary before the step starts
//! ([`Action::creates`], from the run id alone), found again without the
//! journal by its name (`cleanup::sweep`), and removed by
//! [`remove_control`], [`remove_health_check`] and `drill_dns::remove`,
//! each removal proven by a read. A re-run after a crash reads first:
//! controls already set, checks already reading a drill control and records
//! already in the zone are kept.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::controls::{ControlWrite, target_problems, wanted, write_controls};
use super::dns_setup::{self, by_zone, failover_records, level_name, reading};
use super::leftovers::{Drill, Drilled, Left, Look, records_under};
use super::resolution::{CONSECUTIVE_ANSWERS, Resolved, resolve_record};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    drill_names,
};
use crate::cloud::control::{self, SERVE_MARKER};
use crate::cloud::{CloudError, Clouds, DnsChange, DnsRecord, HealthCheck, ObjectUrl};
use crate::journal::{CleanupResult, Temp};
use crate::plan::kinds::traffic::Points;
use crate::plan::spec::{DnsSpec, ResourceKind, SwitchMode};
use crate::steps::graph::{Builder, Phase};

/// Switch a drill copy of every health-check record's setup to the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillControl {
    /// Target region.
    pub region: String,
    /// The plan's regions, home first (the failover chain's order).
    pub regions: Vec<String>,
    /// The plan's `health-check` records.
    #[serde(serialize_with = "super::records::record_names")]
    pub records: Vec<DnsSpec>,
    /// Every `[[dns]]` record of the plan as zone and name, whatever its
    /// switch: what a sweep finds a drill's records under (not part of the
    /// step's identity: a journal's graph never names it).
    #[serde(skip)]
    pub swept: Vec<(String, String)>,
}

/// Ends the drill's RTO clock: the drill names resolve to the target.
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::RESOLVED),
    time: Cost {
        calls: &[
            "route53:ListHostedZonesByName",
            "route53:ChangeResourceRecordSets",
            "s3:PutObject",
            "s3:PutObject",
        ],
        waits: &[
            "route53:ChangeResourceRecordSets",
            "route53:HealthCheckFailover",
        ],
        polls: Some("dns:query"),
    },
    ..Traits::RECOVERY
};

/// A shadow drill of a plan with `health-check` records: one step over
/// all of them (`drill-dns` keeps the others).
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.is_shadow_drill() {
        return;
    }
    let records: Vec<DnsSpec> = (b.plan.spec.dns.iter())
        .filter(|d| d.switch == SwitchMode::HealthCheck)
        .cloned()
        .collect();
    if records.is_empty() {
        return;
    }
    let description = format!(
        "drill copies of the controls, health checks and failover records of {} (drill-<id>.<name>): {} serve, the others drain; resolve the drill names until they name {} {CONSECUTIVE_ANSWERS} times in a row (production's untouched)",
        super::records::joined_names(&records),
        b.target,
        b.target
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::DrillControl(DrillControl {
            swept: (b.plan.spec.dns.iter())
                .map(|d| (d.zone.clone(), d.name.clone()))
                .collect(),
            region: b.target.to_string(),
            regions: b.plan.regions().to_vec(),
            records,
        }),
        None,
        Phase::of(ResourceKind::Dns),
        resources,
        description,
    );
}

/// The drill copy of a record (pure): its drill name, and its controls
/// replaced by the drill's, beside production's.
pub fn drill_spec(run_id: &str, d: &DnsSpec) -> DnsSpec {
    DnsSpec {
        name: drill_names::record_name(run_id, &d.name),
        controls: (d.controls.iter())
            .map(|(r, url)| (r.clone(), drill_names::control_url(run_id, url)))
            .collect(),
        ..d.clone()
    }
}

/// The drill health check for `region` (pure): production's check `prod`,
/// reading the drill control `url` instead of production's, under the
/// drill's caller reference. `Err` when production's check does not read a
/// control object as `dns prepare` makes it.
pub fn drill_check(
    run_id: &str,
    d: &DnsSpec,
    region: &str,
    prod: &HealthCheck,
) -> Result<HealthCheck, String> {
    // The drill control's key is production's plus this suffix, and a
    // check's path ends with the key (either shape `health_check` makes).
    let suffix = drill_names::control_url(run_id, "");
    let want = HealthCheck {
        id: String::new(),
        caller_reference: drill_names::health_check_reference(run_id, &d.id, region),
        path: format!("{}{suffix}", prod.path),
        ..prod.clone()
    };
    let url = (d.controls.get(region))
        .and_then(|u| ObjectUrl::parse(&drill_names::control_url(run_id, u)).ok());
    match (control::control_of(&want), url) {
        (Some((r, u)), Some(url)) if r == region && u == url => Ok(want),
        _ => Err(format!(
            "production's health check {} does not read a control object of {region} (path {})",
            prod.id, prod.path
        )),
    }
}

/// The drill's failover records of `d` (pure): `dns_setup`'s records over
/// `regions` following `checks` (the drill health checks), every name under
/// the drill prefix and every set identifier the drill's own.
pub fn drill_records(
    run_id: &str,
    d: &DnsSpec,
    regions: &[String],
    checks: &BTreeMap<String, String>,
) -> Vec<DnsRecord> {
    let rename = |n: &str| drill_names::record_name(run_id, n);
    failover_records(d, regions, checks)
        .into_iter()
        .map(|r| {
            let mut routing = r.routing.clone();
            if let Some(alias) = routing.as_mut().and_then(|x| x.alias.as_mut()) {
                *alias = rename(alias);
            }
            DnsRecord {
                name: rename(&r.name),
                set_identifier: (r.set_identifier.as_deref())
                    .map(|s| drill_names::set_identifier(run_id, &d.id, s)),
                routing,
                ..r
            }
        })
        .collect()
}

/// What the drill switch publishes; `in_sync_at` stops the drill's RTO clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillControlOutput {
    /// When every drill name had begun its run of answers naming the target.
    pub in_sync_at: DateTime<Utc>,
    /// The drill controls, as the switch's writer left them.
    pub controls: Vec<ControlWrite>,
    /// The drill health checks: region → id, per record id.
    pub health_checks: BTreeMap<String, BTreeMap<String, String>>,
    /// The drill records in place.
    pub records: Vec<DnsRecord>,
    /// The drill names resolved.
    pub resolved: Vec<Resolved>,
    /// Who was asked.
    pub servers: String,
    /// How the clock was stopped, for reports.
    pub basis: String,
}

impl StepOutput for DrillControlOutput {
    const KIND: KindName = KindName::DrillControl;
}

/// What to do when production's setup is missing.
const SETUP_HINT: &str = "set the data-plane switch up first: `drctl dns prepare --plan PLAN` on a calm day (or terraform apply)";

/// The sentence for production's health checks that are missing.
fn missing_setup(missing: &[String]) -> String {
    format!(
        "production's data-plane setup is missing (no health check reads the control of {}): a drill copies it",
        missing.join(", ")
    )
}

impl DrillControl {
    /// Production's health check of each record in each region (read
    /// through Route 53's API), or what is missing.
    fn production<'c>(
        &self,
        checks: &'c [HealthCheck],
    ) -> Result<Vec<(usize, String, &'c HealthCheck)>, Vec<String>> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (i, d) in self.records.iter().enumerate() {
            for region in self.regions.iter().filter(|r| d.controls.contains_key(*r)) {
                match reading(checks, d, region) {
                    Some(h) => out.push((i, region.clone(), h)),
                    None => missing.push(format!("{} in {region}", d.name)),
                }
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(missing)
        }
    }

    /// The failure of a drill whose production setup is missing.
    fn no_setup(&self, missing: &[String]) -> StepFailure {
        StepFailure::state(
            missing_setup(missing),
            SETUP_HINT,
            &self
                .records
                .first()
                .map(|d| d.id.clone())
                .unwrap_or_default(),
            "global",
        )
    }

    /// The drill health checks: kept when one already reads the drill
    /// control (a re-run), created from production's otherwise.
    async fn checks(
        &self,
        cx: &Cx<'_>,
        checks: &[HealthCheck],
    ) -> Result<Vec<BTreeMap<String, String>>, StepFailure> {
        let prod = self.production(checks).map_err(|m| self.no_setup(&m))?;
        let mut ids = vec![BTreeMap::new(); self.records.len()];
        for (i, region, p) in prod {
            let d = &self.records[i];
            let drill = drill_spec(cx.run_id, d);
            let id = match reading(checks, &drill, &region) {
                Some(h) => h.id.clone(),
                None => {
                    let want = drill_check(cx.run_id, d, &region, p).map_err(|why| {
                        StepFailure::state(
                            why,
                            "re-create it with `drctl dns prepare --plan PLAN` (or terraform)",
                            &d.id,
                            "global",
                        )
                    })?;
                    cx.fenced("route53:CreateHealthCheck", "global").await?;
                    cx.clouds.dns.create_health_check(&want).await?.id
                }
            };
            ids[i].insert(region, id);
        }
        Ok(ids)
    }

    /// Creates the drill records not yet in the zone (one batch per zone).
    async fn records(
        &self,
        cx: &Cx<'_>,
        ids: &[BTreeMap<String, String>],
    ) -> Result<Vec<DnsRecord>, StepFailure> {
        let mut all = Vec::new();
        for (zone, ds) in by_zone(&self.records) {
            let z = super::records::zone(cx, &zone).await?;
            let mut changes = Vec::new();
            for d in ds {
                let i = (self.records.iter().position(|x| x.id == d.id)).unwrap_or_default();
                let recs = drill_records(cx.run_id, d, &self.regions, &ids[i]);
                all.extend(recs.iter().cloned());
                // Every drill name of `d` ends with its production name.
                let mut todo = dns_setup::missing(
                    cx.clouds,
                    &z,
                    recs.into_iter().map(DnsChange::Upsert).collect(),
                    &level_name(&d.name, 0),
                )
                .await?;
                changes.append(&mut todo);
            }
            if changes.is_empty() {
                continue;
            }
            cx.fenced(
                &format!("route53:ChangeResourceRecordSets in {zone}"),
                "global",
            )
            .await?;
            cx.clouds
                .dns
                .apply_changes(
                    &z,
                    &changes,
                    &format!(
                        "drctl drill {}: {} to {}",
                        cx.run_id,
                        cx.plan.name(),
                        cx.target
                    ),
                )
                .await?;
        }
        Ok(all)
    }
}

#[async_trait]
impl Action for DrillControl {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for zone in by_zone(&self.records).keys() {
            out.push(super::records::zone_finding(cx, super::records::route53(zone)).await);
        }
        let what = "production's data-plane setup (the drill copies it)";
        out.push(match cx.clouds.dns.list_health_checks().await {
            Ok(checks) => match self.production(&checks) {
                Ok(found) => Finding::ok(
                    what,
                    "global",
                    format!("{} health check(s) to copy", found.len()),
                ),
                Err(e) => Finding::blocks(
                    what,
                    "global",
                    "incomplete",
                    format!("{}; {SETUP_HINT}", missing_setup(&e)),
                ),
            },
            Err(e) => Finding::unreadable(what, "global", &e),
        });
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut out = Vec::new();
        for d in &self.records {
            let drill = drill_spec(cx.run_id, d);
            for (c, state) in wanted(&[&drill as &dyn Points], cx.target) {
                out.push(Planned {
                    call: format!("s3:PutObject If-None-Match via {}", c.region),
                    resource: format!("drill control {}", c.url),
                    region: c.region.clone(),
                    current: "absent".into(),
                    desired: format!("{state} (deleted at cleanup)"),
                    change: true,
                });
                out.push(Planned {
                    call: "route53:CreateHealthCheck".into(),
                    resource: format!("drill health check of {} in {}", d.name, c.region),
                    region: "global".into(),
                    current: "absent".into(),
                    desired: format!(
                        "a copy of production's, reading {} (deleted at cleanup)",
                        c.url
                    ),
                    change: true,
                });
            }
            out.push(Planned {
                call: "route53:ChangeResourceRecordSets".into(),
                resource: drill.name.clone(),
                region: "global".into(),
                current: "absent".into(),
                desired: format!(
                    "failover records following the drill health checks, resolving to {} (deleted at cleanup)",
                    d.targets.get(cx.target).cloned().unwrap_or_default()
                ),
                change: true,
            });
        }
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        // Read production's setup before anything is made: a drill of a
        // switch that was never set up fails here, having created nothing.
        let checks = cx.clouds.dns.list_health_checks().await?;
        self.production(&checks).map_err(|m| self.no_setup(&m))?;
        let drills: Vec<DnsSpec> = (self.records.iter())
            .map(|d| drill_spec(cx.run_id, d))
            .collect();
        let token = super::controls::token(cx).await?;
        let points: Vec<&dyn Points> = drills.iter().map(|d| d as &dyn Points).collect();
        let controls = write_controls(cx, &wanted(&points, cx.target), token).await;
        let problems = target_problems(&controls);
        if !problems.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "the drill controls of {} were not set to serve: {}",
                    cx.target,
                    problems.join("; ")
                ),
                "check the control buckets in the target region (drctl status); the drill's cleanup removes what it made",
                &self.region,
                cx.target,
            ));
        }
        let ids = self.checks(cx, &checks).await?;
        let records = self.records(cx, &ids).await?;
        let resolved =
            futures::future::try_join_all(drills.iter().map(|d| resolve_record(cx, d))).await?;
        let in_sync_at =
            (resolved.iter().filter_map(|r| r.first_at).max()).unwrap_or_else(Utc::now);
        let servers = cx.clouds.resolver.servers();
        DrillControlOutput {
            in_sync_at,
            controls,
            health_checks: (self.records.iter().map(|d| d.id.clone()))
                .zip(ids)
                .collect(),
            records,
            resolved,
            basis: format!(
                "drill names resolved to the target at {servers} ({CONSECUTIVE_ANSWERS} answers in a row; first of them)"
            ),
            servers,
        }
        .to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        let mut out = Vec::new();
        for d in &self.records {
            for (region, url) in &drill_spec(run_id, d).controls {
                out.push(Temp::Control {
                    region: region.clone(),
                    url: url.clone(),
                });
                out.push(Temp::HealthCheck {
                    region: region.clone(),
                    control: url.clone(),
                });
            }
            for r in drill_records(run_id, d, &self.regions, &BTreeMap::new()) {
                let t = Temp::Record {
                    kind: crate::plan::spec::ResourceKind::Dns,
                    project: String::new(),
                    zone: d.zone.to_ascii_lowercase(),
                    name: r.name,
                    rtype: r.rtype,
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }
}

#[async_trait]
impl Drilled for DrillControl {
    /// Its drill records (a level of the failover chain's included), by
    /// their names; its drill controls beside production's, by their keys;
    /// and the health checks that read them.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let mut out = Vec::new();
        for d in &self.records {
            out.extend(self.records_left(look, d).await);
            for (region, url) in &d.controls {
                out.extend(controls_left(look, region, url).await);
            }
        }
        out
    }
}

impl DrillControl {
    /// The drill records in `d`'s zone under one of the plan's names
    /// there.
    async fn records_left(&self, look: &Look<'_>, d: &DnsSpec) -> Vec<Left> {
        let z = super::records::route53(&d.zone);
        let listed = look.zone_sets(z).await;
        let names = (self.swept.iter())
            .filter(|(zone, _)| zone.eq_ignore_ascii_case(&d.zone))
            .map(|(_, name)| name.as_str());
        records_under(&listed, z, names)
    }
}

/// The drill controls beside production's control `url` in `region` (its
/// key and `.drill-<short id>`), and the health checks that read one.
async fn controls_left(look: &Look<'_>, region: &str, url: &str) -> Vec<Left> {
    let Ok(u) = ObjectUrl::parse(url) else {
        return Vec::new();
    };
    let base = u.to_string();
    let beside = ObjectUrl {
        key: format!("{}{}", u.key, drill_names::CONTROL_INFIX),
        ..u.clone()
    };
    let keys = look.object_keys(region, &beside).await;
    let controls = keys.iter().map(|key| {
        let url = ObjectUrl {
            key: key.clone(),
            ..u.clone()
        }
        .to_string();
        let temp = Temp::Control {
            region: region.to_string(),
            url: url.clone(),
        };
        (url, temp)
    });
    let checks = look.health_checks().await;
    let checks = (checks.iter())
        .filter(|h| h.search == SERVE_MARKER)
        .filter_map(control::control_of)
        .filter(|(r, _)| r == region)
        .map(|(_, c)| {
            let temp = Temp::HealthCheck {
                region: region.to_string(),
                control: c.to_string(),
            };
            (c.to_string(), temp)
        });
    // Exactly the control a drill of that short id puts beside this one.
    (controls.chain(checks))
        .filter_map(|(url, temp)| {
            let drill = Drill::of_short(drill_names::drill_of_control(&base, &url)?)?;
            (drill_names::control_url(&drill.run(), &base) == url).then_some(Left { temp, drill })
        })
        .collect()
}

/// Whether `url` is a drill control (its key ends `.drill-<short id>`):
/// production's controls are never removed.
fn is_drill_control(url: &str) -> bool {
    url.rsplit_once(drill_names::CONTROL_INFIX)
        .is_some_and(|(_, short)| drill_names::started_from_short_id(short).is_some())
}

/// Deletes a drill control and reads it again to prove it is gone.
pub async fn remove_control(
    clouds: &Clouds,
    region: &str,
    url: &str,
) -> Result<(CleanupResult, String), CloudError> {
    let Some(u) = ObjectUrl::parse(url).ok().filter(|_| is_drill_control(url)) else {
        return Ok((
            CleanupResult::NotOurs,
            format!("{url} is not a drill control"),
        ));
    };
    if clouds.objects.get(region, &u).await?.is_none() {
        return Ok((
            CleanupResult::Absent,
            format!("GetObject via {region} finds no {url}"),
        ));
    }
    clouds.objects.delete(region, &u).await?;
    Ok(match clouds.objects.get(region, &u).await? {
        None => (
            CleanupResult::Removed,
            format!("deleted; GetObject via {region} then found nothing"),
        ),
        Some(_) => (
            CleanupResult::Failed,
            format!("{url} still reads after the delete"),
        ),
    })
}

/// The health checks that read the drill control `url` in `region`.
fn checks_reading<'a>(
    checks: &'a [HealthCheck],
    region: &str,
    url: &ObjectUrl,
) -> Vec<&'a HealthCheck> {
    (checks.iter())
        .filter(|h| h.search == SERVE_MARKER)
        .filter(|h| control::control_of(h).is_some_and(|(r, u)| r == region && &u == url))
        .collect()
}

/// Deletes every health check that reads the drill control `control` and
/// lists the checks again to prove none is left. Only checks of a drill
/// control are ever deleted.
pub async fn remove_health_check(
    clouds: &Clouds,
    region: &str,
    control: &str,
) -> Result<(CleanupResult, String), CloudError> {
    let Some(u) = ObjectUrl::parse(control)
        .ok()
        .filter(|_| is_drill_control(control))
    else {
        return Ok((
            CleanupResult::NotOurs,
            format!("{control} is not a drill control"),
        ));
    };
    let found: Vec<String> = checks_reading(&clouds.dns.list_health_checks().await?, region, &u)
        .into_iter()
        .map(|h| h.id.clone())
        .collect();
    if found.is_empty() {
        return Ok((
            CleanupResult::Absent,
            format!("ListHealthChecks finds none reading {control}"),
        ));
    }
    for id in &found {
        clouds.dns.delete_health_check(id).await?;
    }
    let left = checks_reading(&clouds.dns.list_health_checks().await?, region, &u).len();
    Ok(if left == 0 {
        (
            CleanupResult::Removed,
            format!(
                "deleted {}; ListHealthChecks then found none reading it",
                found.join(", ")
            ),
        )
    } else {
        (
            CleanupResult::Failed,
            format!("{left} health check(s) still read {control} after the delete"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::FailoverRole;

    const RUN: &str = "20261124T064000Z-checkout-ab12";

    fn spec() -> DnsSpec {
        let regions = ["us-east-1", "us-west-2", "eu-west-1"];
        DnsSpec {
            id: "checkout".into(),
            zone: "example.com.".into(),
            name: "checkout.example.com.".into(),
            rtype: "CNAME".into(),
            ttl: 60,
            switch: SwitchMode::HealthCheck,
            targets: (regions.iter())
                .map(|r| (r.to_string(), format!("checkout-{r}.example.com.")))
                .collect(),
            follows: None,
            controls: (regions.iter())
                .map(|r| (r.to_string(), format!("s3://ctl-{r}/checkout/checkout")))
                .collect(),
            after: Vec::new(),
        }
    }

    fn regions() -> Vec<String> {
        ["us-east-1", "us-west-2", "eu-west-1"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_drill_check_copies_production_and_reads_the_drill_control() {
        let d = spec();
        for endpoint in [None, Some("http://127.0.0.1:4566")] {
            let url = ObjectUrl::parse("s3://ctl-us-west-2/checkout/checkout").expect("url");
            let prod = HealthCheck {
                id: "hc-prod".into(),
                ..control::health_check("prod-ref", "us-west-2", &url, endpoint)
            };
            let drill = drill_check(RUN, &d, "us-west-2", &prod).expect("a copy");
            assert_eq!(
                (drill.check_type.as_str(), drill.ip.as_deref(), drill.port),
                (prod.check_type.as_str(), prod.ip.as_deref(), prod.port)
            );
            assert_eq!(drill.interval, prod.interval);
            assert_eq!(drill.id, "");
            assert_ne!(drill.caller_reference, prod.caller_reference);
            let (_, read) = control::control_of(&drill).expect("reads a control");
            assert_eq!(
                read.to_string(),
                drill_names::control_url(RUN, "s3://ctl-us-west-2/checkout/checkout")
            );
            // A check of another region's control is not a copy for this one.
            assert!(drill_check(RUN, &d, "eu-west-1", &prod).is_err());
        }
    }

    #[test]
    fn drill_records_are_named_and_identified_apart_from_production() {
        let d = spec();
        let checks = (regions().into_iter())
            .map(|r| (r.clone(), format!("hc-drill-{r}")))
            .collect();
        let prod = failover_records(&d, &regions(), &BTreeMap::new());
        let recs = drill_records(RUN, &d, &regions(), &checks);
        assert_eq!(recs.len(), prod.len());
        for r in &recs {
            assert!(
                r.name.starts_with("drill-20261124t064000z-ab12."),
                "{}",
                r.name
            );
            let set = r.set_identifier.as_deref().unwrap_or_default();
            assert!(
                set.starts_with("drill-20261124t064000z-ab12-checkout-"),
                "{set}"
            );
            assert!(
                prod.iter()
                    .all(|p| p.set_identifier.as_deref() != Some(set))
            );
            if let Some(alias) = r.routing.as_ref().and_then(|x| x.alias.as_deref()) {
                assert_eq!(
                    alias,
                    "drill-20261124t064000z-ab12.drctl-failover-1.checkout.example.com."
                );
            }
        }
        let primary = &recs[0];
        assert_eq!(
            primary.name,
            "drill-20261124t064000z-ab12.checkout.example.com."
        );
        let routing = primary.routing.clone().unwrap_or_default();
        assert_eq!(routing.failover, Some(FailoverRole::Primary));
        assert_eq!(
            routing.health_check_id.as_deref(),
            Some("hc-drill-us-east-1")
        );
        assert_eq!(primary.values, ["checkout-us-east-1.example.com."]);
    }

    #[test]
    fn a_drill_names_every_temporary_before_it_starts() {
        let step = DrillControl {
            region: "us-west-2".into(),
            regions: regions(),
            records: vec![spec()],
            swept: Vec::new(),
        };
        let temps = step.creates(RUN);
        let count = |f: fn(&Temp) -> bool| temps.iter().filter(|t| f(t)).count();
        assert_eq!(count(|t| matches!(t, Temp::Control { .. })), 3);
        assert_eq!(count(|t| matches!(t, Temp::HealthCheck { .. })), 3);
        // The name and the chain's second level.
        assert_eq!(count(|t| matches!(t, Temp::Record { .. })), 2);
        for t in &temps {
            match t {
                Temp::Control { url, .. } | Temp::HealthCheck { control: url, .. } => {
                    assert!(is_drill_control(url), "{url}");
                }
                Temp::Record { name, .. } => {
                    assert!(name.starts_with(drill_names::RECORD_PREFIX));
                }
                other => panic!("{other}"),
            }
        }
        assert!(!is_drill_control("s3://ctl-us-west-2/checkout/checkout"));
    }
}
