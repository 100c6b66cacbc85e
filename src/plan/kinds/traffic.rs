//! The traffic role: where a record points now, whatever its kind (a
//! Route 53 record, a Cloud DNS record), and the data-plane controls that
//! steer it, for `status` and `watch` alike ([`Points`]); and, for a
//! record whose switch is on the data plane, its verification by
//! resolution and its setup ([`Resolving`]), for `switch-control`,
//! `verify-resolution`, their readiness and `drctl dns prepare`.
//!
//! # Why a role
//!
//! `status` and `watch` read where a plan's traffic goes to say where it
//! serves. They read `[[dns]]` records alone: a plan whose records are
//! Cloud DNS's showed them to neither, and `watch` placed it by its
//! databases only. A traffic kind now answers [`Points`], and both
//! readers go through it ([`crate::steps::placement`]), never through a
//! `match` on kinds. The same holds for the switch: one step writes
//! every kind's controls and one resolves every kind's names, each record
//! through [`Resolving`]. Each method is the kind's to answer: none has a
//! default.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use serde::Serialize;

use crate::cloud::control::{Control, ControlState};
use crate::cloud::{CloudError, Clouds, DnsRecord, ObjectUrl, PutMode, PutOutcome};
use crate::plan::Plan;

/// A DNS value as compared: no trailing dot, lower case.
pub fn norm(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether two record sets hold the same values, in any order and spelling.
pub fn same_values(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<String> = a.iter().map(|v| norm(v)).collect();
    let mut b: Vec<String> = b.iter().map(|v| norm(v)).collect();
    a.sort();
    b.sort();
    a == b
}

/// Whether two DNS names are the same (case and the trailing dot aside).
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A data-plane record as it resolves now, under `limit`: what clients
/// get, asked of DNS with no provider API call (the API may be what is
/// down), as one record set of `name` and `rtype`. `zone`: where the
/// resolver looks the name up when no servers are configured.
pub async fn resolved(
    clouds: &Clouds,
    limit: Duration,
    (zone, name, rtype): (&str, &str, &str),
) -> Result<Option<Vec<DnsRecord>>, CloudError> {
    let ask = ("dns", "query", name, "global");
    let values = super::bounded(limit, ask, clouds.resolver.resolve(zone, name, rtype)).await?;
    Ok(Some(vec![DnsRecord::simple(
        name.into(),
        rtype,
        None,
        values,
    )]))
}

/// One data-plane control of a record, as a reader finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlAt<'a> {
    /// The plan's region (its site) whose traffic it steers.
    pub site: &'a str,
    /// The region its object is read through (the site's own, or its GCP
    /// region for a Cloud Storage control).
    pub via: &'a str,
    /// The object.
    pub url: &'a str,
}

/// The region a record's values name, by data resource and value: the
/// region whose copy's endpoint it is (for a record that follows data).
pub type Endpoint<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// The traffic role's reads of one record of a plan.
#[async_trait]
pub trait Points: super::Declared + Sync {
    /// The data resource whose endpoint in the target it points at, if
    /// any (its `follows`).
    fn follows(&self) -> Option<&str>;
    /// Its name (`api.example.com.`), its type and its zone, for messages.
    fn names(&self) -> (&str, &str, &str);
    /// Whether a shadow drill rehearses its switch (else a drill's verdict
    /// names it as not rehearsed).
    fn drilled(&self) -> bool;
    /// Whether its read asks a control plane that a region's outage can
    /// take away (Route 53's API, hosted in us-east-1) rather than
    /// resolving the name or asking a global API: `watch` asks those last,
    /// only when the other reads did not settle where the plan serves.
    fn read_by_api(&self) -> bool;
    /// Reads its record sets, each call under `limit`
    /// ([`super::bounded`]: running past it is its region's connection
    /// failure): `Ok(None)` when its zone does not exist, an empty list
    /// when the record does not.
    async fn read(
        &self,
        clouds: &Clouds,
        limit: Duration,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError>;
    /// Its values as shown, and the plan's region they point to (pure): a
    /// record that follows a data resource points where the copy whose
    /// endpoint it names is (`endpoint`); another, where the target it
    /// names is. `None`: no region of the plan, or a policy that its
    /// controls steer.
    fn points_to(
        &self,
        plan: &Plan,
        records: &[DnsRecord],
        endpoint: Endpoint<'_>,
    ) -> (Vec<String>, Option<String>);
    /// Its data-plane controls, one a region (none: its records alone say
    /// where it points).
    fn controls(&self) -> Vec<ControlAt<'_>>;
    /// Its verification by resolution, when its switch is verified by
    /// asking DNS (a data-plane switch: its controls steer the answer, and
    /// no provider API call may be on the path); `None` when the switch
    /// itself reads its change back.
    fn resolving(&self) -> Option<&dyn Resolving>;
    /// Its switch by a change of its record sets through its provider's
    /// DNS API (records mode), `None` for a record its controls steer.
    fn switching(&self) -> Option<&dyn Switching>;
}

/// One piece of a record's data-plane setup that is not as `drctl dns
/// prepare` makes it, as a reader of the setup finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// What (`record checkout.example.com. CNAME [us-west-2]`, `health
    /// check of us-west-2`).
    pub what: String,
    /// How it differs (`missing`, `follows health check X, not one that
    /// reads s3://...`).
    pub how: String,
    /// Whether the target's answer depends on it: its own record and
    /// health check, and the links of the chain above it.
    pub needed: bool,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.what, self.how)
    }
}

/// One thing `dns prepare` did or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prepared {
    /// What (`control s3://...`, `health check drctl-...`, `record api. PRIMARY`).
    pub resource: String,
    /// Where.
    pub region: String,
    /// `created`, `exists`, `updated`.
    pub action: String,
}

/// Writes a control holding `state` at `url` in `region`, create-only: an
/// existing control is left as it is, whatever it holds. Returns what
/// `dns prepare` reports of it (shared by both clouds' prepare).
pub async fn create_control(
    clouds: &Clouds,
    region: &str,
    url: &ObjectUrl,
    state: ControlState,
) -> Result<String, CloudError> {
    let body = Control {
        state,
        token: 0,
        run: "prepare".into(),
        at: chrono::Utc::now(),
    }
    .body();
    Ok(
        match clouds
            .objects
            .put(region, url, body.into(), PutMode::CreateOnly)
            .await?
        {
            PutOutcome::Written(_) => format!("created ({state})"),
            PutOutcome::AlreadyExists => "exists (left as it is)".into(),
        },
    )
}

/// What a record's setup shows, read beside a verification whose answer
/// stays wrong ([`Resolving::setup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSeen {
    /// How it differs from what `dns prepare` makes, or why it could not
    /// be read (its API is the control plane: bounded, and never a reason
    /// to stop waiting).
    pub gaps: Result<Vec<Gap>, String>,
    /// How long its health checks take to see a drained control, when the
    /// read says (Route 53's, from the health checks it follows): the
    /// wait's pace from then on.
    pub flip: Option<Duration>,
    /// What a setup without gaps is called.
    pub in_place: &'static str,
    /// What mends its gaps (`run \`drctl dns prepare --plan P\``, or
    /// what to do first when `dns prepare` cannot).
    pub fix: String,
}

/// Where and how a record's setup is read ([`Resolving::setup`]).
#[derive(Clone, Copy)]
pub struct SetupAt<'a> {
    /// The clouds.
    pub clouds: &'a Clouds,
    /// The record's plan.
    pub plan: &'a Plan,
    /// The plan's region a switch goes to.
    pub target: &'a str,
    /// Each call's bound.
    pub limit: Duration,
    /// The reads the plan's records share.
    pub reads: &'a SetupReads,
}

/// What one check of a plan's setup reads once for all its records: a
/// kind's read of the whole plan (Route 53's health checks and zone
/// listings, one for every record, as Route 53's API allows five calls a
/// second to the account), made by the first record that asks and
/// answered to the others.
#[derive(Default)]
pub struct SetupReads(Mutex<HashMap<&'static str, Arc<OnceCell<Shared>>>>);

type Shared = Arc<dyn Any + Send + Sync>;

impl SetupReads {
    /// The read under `key`, made by `read` the first time it is asked
    /// (and made again, unshared, should another type have taken the key).
    pub async fn once<T, F>(&self, key: &'static str, read: impl Fn() -> F) -> Arc<T>
    where
        T: Any + Send + Sync,
        F: Future<Output = T>,
    {
        let cell = {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(key).or_default().clone()
        };
        let shared = cell
            .get_or_init(|| async { Arc::new(read().await) as Shared })
            .await;
        match shared.clone().downcast::<T>() {
            Ok(t) => t,
            Err(_) => Arc::new(read().await),
        }
    }
}

/// The traffic role's verification by resolution: a data-plane switch is
/// in effect when the record's name resolves to the target's value, asked
/// of DNS (`steps::resolution` asks, N answers in a row, and the RTO clock
/// stops at the first). What differs by kind is answered here: the value
/// wanted, where the name is asked, how fast its health checks flip, and
/// what its setup shows when the answer stays wrong. No method has a
/// default.
#[async_trait]
pub trait Resolving: Points {
    /// The provider's health-checked failover the wait goes through, as
    /// the model names it (`route53:HealthCheckFailover`): its cost.
    fn waits(&self) -> &'static [&'static str];
    /// The zone whose servers are asked when no `dns_servers` are set.
    fn resolver_zone(&self) -> &str;
    /// The value it answers once switched to the plan's region `target`
    /// (`None`: it has none there).
    fn answer(&self, target: &str) -> Option<&str>;
    /// Its TTL in seconds.
    fn ttl(&self) -> i64;
    /// How long its health checks are taken to need to see a drained
    /// control before anything is read (`dns prepare`'s pace, or the
    /// provider's as modelled).
    fn assumed_flip(&self) -> Duration;
    /// What to look at when the name does not resolve in time.
    fn hint(&self, plan: &str) -> String;
    /// Reads its setup for a switch of `at.plan` to `at.target`, under
    /// `at.limit` (its provider's API: the control plane, beside the
    /// path), a read of the whole plan's setup shared through `at.reads`
    /// with the plan's other records.
    async fn setup(&self, at: SetupAt<'_>) -> SetupSeen;
    /// `drctl dns prepare` for it (calm days: its provider's API): its
    /// controls created where absent (home serves, the others drain; an
    /// existing one is left as it is) and its records as a switch needs
    /// them, each made once (read first). Idempotent. `s3_endpoint`: the
    /// S3 endpoint the health checks must read through (an emulator).
    async fn prepare(
        &self,
        clouds: &Clouds,
        plan: &Plan,
        s3_endpoint: Option<&str>,
    ) -> Result<Vec<Prepared>, CloudError>;
}

/// The traffic role's records mode: a record switched by one atomic change
/// of its zone through its provider's DNS API, together with the plan's
/// other records there (`switch-dns`), then waited for until in effect and
/// read back (`verify-dns`). The steps read, decide and judge; what differs
/// by kind is answered here and by its zone's [`ZoneApi`]. No method has a
/// default.
pub trait Switching: Points {
    /// Its zone: the plan's records in one zone change together.
    fn zone(&self) -> Zone<'_>;
    /// The record sets a switch to `target` wants (pure). `endpoint`: the
    /// endpoint in the target of the resource it follows (`None` where it
    /// follows none, or before it is known: a read's key alone).
    fn wanted(&self, plan: &Plan, target: &str, endpoint: Option<&str>) -> Vec<DnsRecord>;
    /// What the switch does to it, for a step's description (pure).
    fn change(&self, target: &str) -> String;
}

/// A zone as a records-mode switch changes it.
#[derive(Clone, Copy)]
pub struct Zone<'a> {
    /// Its kind's changes.
    pub api: &'static dyn ZoneApi,
    /// The project that holds it (Cloud DNS); empty where there is none.
    pub project: &'a str,
    /// Its name as the plan gives it.
    pub name: &'a str,
}

impl<'a> Zone<'a> {
    /// The step subject of its switch (its kind's spelling, unique across
    /// kinds).
    pub fn subject(&self) -> String {
        self.api.subject(self.project, self.name)
    }

    /// Zone `name` (of `project`, where its kind has them) of `kind`, as a
    /// journal names it; `None` for a kind with no records mode.
    pub fn of(
        kind: crate::plan::spec::ResourceKind,
        project: &'a str,
        name: &'a str,
    ) -> Option<Self> {
        Some(Self {
            api: kind.zones()?,
            project,
            name,
        })
    }
}

/// A zone as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ZoneFound {
    /// What its kind's later calls name it by (Route 53's zone id, Cloud
    /// DNS's managed zone).
    pub handle: String,
    /// The DNS name it serves (`example.com.`).
    pub dns_name: String,
}

/// What a zone's change did.
#[derive(Debug, Default)]
pub struct Sent {
    /// The changes sent and answered (none: nothing needed, or no answer).
    pub change_ids: Vec<String>,
    /// Whether each was in effect in its own answer.
    pub in_effect: bool,
    /// The error that stopped it (after the changes above, which stand).
    pub error: Option<CloudError>,
}

/// How a zone's change is sent.
#[derive(Clone, Copy)]
pub struct SwapAt<'a> {
    /// The clouds.
    pub clouds: &'a Clouds,
    /// The zone.
    pub zone: Zone<'a>,
    /// The zone as found.
    pub found: &'a ZoneFound,
    /// The plan the change is for.
    pub plan: &'a str,
    /// The change's comment (the run, the plan and the target).
    pub comment: &'a str,
    /// The run's queue that sends several plans' changes to one Route 53
    /// zone together (`None`: each change goes alone).
    pub queue: Option<&'a crate::cloud::dns_batch::Coalescer>,
}

/// The model's names of a records-mode switch's calls (its cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneCalls {
    /// The switch's calls.
    pub switch: &'static [&'static str],
    /// The verification's calls after the wait.
    pub verify: &'static [&'static str],
    /// What the verification waits on.
    pub waits: &'static [&'static str],
    /// Its poll.
    pub poll: &'static str,
}

/// A DNS provider's zone changes, for a records-mode switch ([`Zone`]):
/// found, read, swapped in one atomic change whose deletions are the sets
/// exactly as read (a set changed since the read is refused, not
/// overwritten), waited on, read back. No method has a default.
#[async_trait]
pub trait ZoneApi: Sync {
    /// The provider, as messages name it (`Route 53`).
    fn provider(&self) -> &'static str;
    /// The kind whose zones these are (a journaled drill record names it,
    /// so any machine's cleanup finds these changes again).
    fn kind(&self) -> crate::plan::spec::ResourceKind;
    /// The subject of a zone's switch step (`example.com.`).
    fn subject(&self, project: &str, name: &str) -> String;
    /// Its calls, as the model names them.
    fn calls(&self) -> ZoneCalls;
    /// What a records-mode switch means when the API does not answer.
    fn api_down(&self) -> &'static str;
    /// Whether a change it accepted may be stranded, never applied and
    /// never in effect, and must be sent again (Route 53's, accepted just
    /// before its control plane failed over to its accelerated-recovery
    /// copy): `verify-dns` then resends it once (`steps::verify_dns`).
    fn strands(&self) -> bool;
    /// Whether a set may hold what a plain record does not replace (a
    /// routing policy), so that preflight and `status` read the sets to
    /// say so before the switch refuses it.
    fn policies(&self) -> bool;
    /// Why a plain record may not replace the set as read (`None`: it may).
    fn refuses(&self, read: &DnsRecord) -> Option<String>;
    /// How to read a record set by hand, for a refusal's hint.
    fn look(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String;
    /// How to delete a record set by hand (a cleanup that could not).
    fn manual_delete(&self, zone: Zone<'_>, name: &str, rtype: &str) -> String;
    /// Finds the zone (`None`: it does not exist).
    async fn find(&self, clouds: &Clouds, zone: Zone<'_>) -> Result<Option<ZoneFound>, CloudError>;
    /// Why a records-mode switch of the zone needs a control plane that
    /// lives in one region, which an outage of it takes down (Route 53's,
    /// in us-east-1, for a zone without accelerated recovery): said by
    /// `status` and the readiness matrix beside the switch, before an
    /// outage does. `None`: its changes go on without one (Cloud DNS's
    /// control plane is global; a Route 53 zone with accelerated recovery
    /// enabled resumes changes within about an hour).
    async fn depends(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
    ) -> Result<Option<String>, CloudError>;
    /// The zone's record-set protections (Route 53's: while one exists,
    /// any change of a record set of its name and type is refused, for
    /// every principal); empty where the provider has none (Cloud DNS).
    async fn protections(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
    ) -> Result<Vec<crate::cloud::Protection>, CloudError>;
    /// How to lift protection `p` by hand (drctl never lifts one itself:
    /// whoever made it had a reason).
    fn lift(&self, found: &ZoneFound, p: &crate::cloud::Protection) -> String;
    /// The record sets as they are now, one for each of `want` (matched
    /// by name, type and set identifier; `None`: absent). A set with a
    /// routing policy a plain record does not have is read with `routing`.
    async fn read(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
        want: &[DnsRecord],
    ) -> Result<Vec<Option<DnsRecord>>, CloudError>;
    /// Sends the swaps (each set as read, and as wanted) as one atomic
    /// change, or as few as the provider's limits allow (never splitting
    /// a swap). Sent once: a lost answer is judged by a read.
    async fn swap(&self, at: SwapAt<'_>, swaps: &[(Option<DnsRecord>, DnsRecord)]) -> Sent;
    /// Every set of `name` and `rtype` in the zone, whatever its set
    /// identifier (a drill's failover records share a name).
    async fn sets(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
        (name, rtype): (&str, &str),
    ) -> Result<Vec<DnsRecord>, CloudError>;
    /// Deletes the sets exactly as read, in one change (a drill record's
    /// cleanup): the change's id and whether it was in effect in its own
    /// answer. Refused when a set no longer matches.
    async fn delete(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        found: &ZoneFound,
        sets: &[DnsRecord],
    ) -> Result<(String, bool), CloudError>;
    /// Every record set of the zone (`None`: no such zone, so no drill
    /// record in it either): what a sweep looks through for a drill's
    /// record whose journal is gone.
    async fn list(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
    ) -> Result<Option<Vec<DnsRecord>>, CloudError>;
    /// Whether `e` is the provider refusing a change whose deletion no
    /// longer matched (the step reads again and judges).
    fn refused(&self, e: &CloudError) -> bool;
    /// Whether change `id` is in effect.
    async fn in_effect(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
        id: &str,
    ) -> Result<bool, CloudError>;
    /// The zone's changes still pending, which a switch that found its
    /// records already switched waits on (a resumed run's own change may
    /// still be on its way); `None` where the provider cannot list a
    /// zone's changes.
    async fn pending(
        &self,
        clouds: &Clouds,
        zone: Zone<'_>,
    ) -> Result<Option<Vec<String>>, CloudError>;
}

/// What the protections gate read of a plan's zones, by subject: each zone
/// found and the protections holding the switch's sets, for preflight to
/// use instead of reading them again moments later.
pub type ZonesRead = std::collections::BTreeMap<String, (ZoneFound, Vec<crate::cloud::Protection>)>;

/// How long a read of a zone's protections may take: every reader of them
/// is beside the recovery path (the switch names a protection that
/// refuses it), and Route 53's API may be what the outage took.
pub const PROTECTIONS_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// The protections in zone `z` that hold any record set of `want` (by
/// name and type, whatever its set identifier): what a switch of them
/// would be refused for. Read within [`PROTECTIONS_BOUND`].
pub async fn holding(
    clouds: &Clouds,
    (z, found): (Zone<'_>, &ZoneFound),
    want: &[DnsRecord],
) -> Result<Vec<crate::cloud::Protection>, CloudError> {
    let read = tokio::time::timeout(PROTECTIONS_BOUND, z.api.protections(clouds, z, found));
    let all = read.await.map_err(|_| {
        CloudError::new(
            "dns",
            "protections",
            z.name,
            "global",
            crate::cloud::ErrorKind::Connection,
            format!("no answer within {}s", PROTECTIONS_BOUND.as_secs()),
        )
    })??;
    Ok((all.into_iter())
        .filter(|p| want.iter().any(|w| p.covers(&w.name, &w.rtype)))
        .collect())
}

/// Why protection `p` stops a switch of its record set, and how to go on
/// (preflight's finding, `status`'s row, the gate's refusal and the
/// switch's failure all say it so).
pub fn held(z: Zone<'_>, found: &ZoneFound, p: &crate::cloud::Protection) -> (String, String) {
    (
        format!(
            "record {} {} in zone {} is protected ({}): {} refuses any change to it, for every role, so a switch by records would fail",
            p.name,
            p.rtype,
            z.subject(),
            match &p.comment {
                Some(c) => format!("comment: {c:?}"),
                None => "no comment".into(),
            },
            z.api.provider()
        ),
        format!(
            "lift it before the switch if the change is wanted ({}); drctl never lifts a protection itself. A switch through the data plane (switch = \"health-check\") changes no record during a failover: consider it for this record",
            z.api.lift(found, p)
        ),
    )
}

/// `records` by zone, as its kind's [`ZoneApi::subject`] spells it: the
/// records one step per zone moves together (a switch, a drill's).
pub fn by_zone<'p>(
    records: impl Iterator<Item = &'p dyn Switching>,
) -> std::collections::BTreeMap<String, Vec<&'p dyn Switching>> {
    let mut zones = std::collections::BTreeMap::<_, Vec<_>>::new();
    for d in records {
        zones.entry(d.zone().subject()).or_default().push(d);
    }
    zones
}

/// The plan's records-mode records, every traffic kind's, in plan order.
pub fn switching(plan: &Plan) -> impl Iterator<Item = &dyn Switching> {
    (super::each(&plan.spec).into_iter()).filter_map(|r| match r.shown() {
        super::Shown::Traffic(p) => p.switching(),
        super::Shown::Data(_) | super::Shown::Capacity(_) | super::Shown::Steps { .. } => None,
    })
}

/// The plan's records whose switch is verified by resolution, every
/// traffic kind's, in plan order.
pub fn resolving(plan: &Plan) -> impl Iterator<Item = &dyn Resolving> {
    (super::each(&plan.spec).into_iter()).filter_map(|r| match r.shown() {
        super::Shown::Traffic(p) => p.resolving(),
        super::Shown::Data(_) | super::Shown::Capacity(_) | super::Shown::Steps { .. } => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::kinds::{Shown, each};

    /// The traffic role's contract, over every traffic kind of every
    /// reference plan (AWS and GCP): a record holding a region's target
    /// points at that region, whatever case and trailing dot it is read
    /// with; a value of no region points nowhere; each data-plane control
    /// steers a region of the plan.
    #[test]
    fn every_traffic_kind_points_where_its_value_names_and_its_controls_steer_the_plans_regions() {
        let mut kinds = std::collections::BTreeSet::new();
        for plan in crate::plan::reference_with_gcp() {
            for r in each(&plan.spec) {
                let Shown::Traffic(p) = r.shown() else {
                    continue;
                };
                kinds.insert(r.kind());
                let none = |_: &str, _: &str| None;
                for c in p.controls() {
                    assert!(plan.regions().iter().any(|r| r == c.site), "{c:?}");
                }
                if r.follows().is_some() {
                    continue;
                }
                let (name, rtype, _) = p.names();
                let at = |value: &str| {
                    // Of weight: a weighted record points where its
                    // heaviest set does.
                    let read = [DnsRecord {
                        weight: Some(100),
                        ..DnsRecord::simple(name.into(), rtype, None, vec![value.into()])
                    }];
                    p.points_to(&plan, &read, &none).1
                };
                let targets = r
                    .regions()
                    .expect("a record that follows nothing has targets");
                let sites = plan.sites();
                for region in plan.regions() {
                    let Some((_, value)) =
                        (targets.iter()).find(|(k, _)| sites.site_of(k) == region.as_str())
                    else {
                        continue;
                    };
                    let shouted = format!("{}.", value.trim_end_matches('.').to_uppercase());
                    assert_eq!(at(&shouted).as_deref(), Some(region.as_str()), "{}", p.id());
                }
                assert_eq!(at("elsewhere.example.org."), None, "{}", p.id());
            }
        }
        let dns = crate::plan::spec::ResourceKind::Dns;
        let cloud_dns = crate::plan::spec::ResourceKind::CloudDns;
        assert_eq!(kinds, [dns, cloud_dns].into_iter().collect());
    }
}

/// The verification role's contract, over every record of every
/// reference plan and the health-check Cloud DNS plan: a record is
/// verified by resolution exactly when it has data-plane controls; its
/// answer for each of the plan's regions is that region's target (a
/// Cloud DNS record's through the site's GCP region); its wait is one the
/// model knows; its assumed flip is not zero.
#[cfg(test)]
mod resolving_tests {
    use super::*;
    use crate::plan::kinds::{Shown, each};

    #[test]
    fn every_record_with_controls_is_verified_by_resolution_and_answers_its_regions_target() {
        let model = crate::cloud::model::Model::aws().expect("the model");
        let plans = (crate::plan::reference_with_gcp().into_iter())
            .chain([crate::plan::orders_gcp_health_checked()]);
        let mut kinds = std::collections::BTreeSet::new();
        for plan in plans {
            for r in each(&plan.spec) {
                let Shown::Traffic(p) = r.shown() else {
                    continue;
                };
                let Some(v) = p.resolving() else {
                    assert!(p.controls().is_empty(), "{}", p.id());
                    continue;
                };
                assert!(!p.controls().is_empty(), "{}", p.id());
                kinds.insert(r.kind());
                assert_eq!(v.id(), p.id());
                let targets = r.regions().expect("a data-plane record names targets");
                let sites = plan.sites();
                for region in plan.regions() {
                    let want = (targets.iter())
                        .find(|(k, _)| sites.site_of(k) == region.as_str())
                        .map(|(_, t)| t.as_str());
                    assert_eq!(v.answer(region), want, "{} in {region}", v.id());
                }
                assert_eq!(v.answer("nowhere-1"), None);
                for w in v.waits() {
                    assert!(model.duration(w).is_some(), "{w} modelled");
                }
                assert!(v.assumed_flip() > Duration::ZERO);
                assert!(!v.resolver_zone().is_empty());
                assert!(
                    v.hint(plan.name()).contains("drctl"),
                    "{}",
                    v.hint(plan.name())
                );
            }
        }
        let dns = crate::plan::spec::ResourceKind::Dns;
        let cloud_dns = crate::plan::spec::ResourceKind::CloudDns;
        assert_eq!(kinds, [dns, cloud_dns].into_iter().collect());
    }
}

/// The records-mode role's contract, over every record of every reference
/// plan (AWS and GCP) and the health-check Cloud DNS plan.
#[cfg(test)]
mod switching_tests {
    use super::*;
    use crate::plan::kinds::{Shown, each};

    /// A record is switched by a change of its records exactly when its
    /// controls do not steer it; it wants, for each of its plan's regions,
    /// record sets holding that region's value (a record that follows a
    /// resource, the endpoint given); its zone's subject is its kind's and
    /// names the zone; its zone's calls are ones the model knows.
    #[test]
    fn every_record_without_controls_is_switched_by_its_zone_to_each_regions_target() {
        let model = crate::cloud::model::Model::aws().expect("the model");
        let plans = (crate::plan::reference_with_gcp().into_iter())
            .chain([crate::plan::orders_gcp_health_checked()]);
        let mut kinds = std::collections::BTreeSet::new();
        for plan in plans {
            for r in each(&plan.spec) {
                let Shown::Traffic(p) = r.shown() else {
                    continue;
                };
                let Some(s) = p.switching() else {
                    assert!(p.resolving().is_some(), "{}: switched somehow", p.id());
                    continue;
                };
                assert!(
                    p.resolving().is_none() && p.controls().is_empty(),
                    "{}",
                    p.id()
                );
                kinds.insert(r.kind());
                assert_eq!(s.id(), p.id());
                let z = s.zone();
                assert!(z.subject().contains(z.name), "{}", z.subject());
                let calls = z.api.calls();
                for op in calls.switch.iter().chain(calls.verify).chain([&calls.poll]) {
                    assert!(op.contains(':'), "{op}");
                }
                for w in calls.waits {
                    assert!(model.duration(w).is_some(), "{w} modelled");
                }
                assert!(!z.api.api_down().is_empty() && !z.api.provider().is_empty());
                for region in plan.regions() {
                    let want = s.wanted(&plan, region, Some("db.example.com."));
                    assert!(!want.is_empty(), "{} in {region}", s.id());
                    for w in &want {
                        assert!(same_name(&w.name, s.names().0), "{w:?}");
                        assert!(!w.values.is_empty(), "{} in {region}: {w:?}", s.id());
                        assert_eq!(z.api.refuses(w), None, "a plain record replaces itself");
                    }
                    assert!(!s.change(region).is_empty());
                }
            }
        }
        let dns = crate::plan::spec::ResourceKind::Dns;
        let cloud_dns = crate::plan::spec::ResourceKind::CloudDns;
        assert_eq!(kinds, [dns, cloud_dns].into_iter().collect());
    }
}

/// The promise that a plan's setup is read once for all its records.
#[cfg(test)]
mod reads_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Regression (the setup check read Route 53's whole setup once per
    /// record, N times a plan's calls against an API that allows five a
    /// second): records asking at once under one key share one read; a
    /// key of its own reads on its own.
    #[tokio::test(start_paused = true)]
    async fn records_asking_at_once_share_one_read_a_key() {
        let reads = SetupReads::default();
        let made = AtomicUsize::new(0);
        let read = || async {
            made.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<u32, String>(7)
        };
        let (a, b, c) = futures::join!(
            reads.once("route53", read),
            reads.once("route53", read),
            reads.once("route53", read)
        );
        assert_eq!(
            (a.as_ref(), b.as_ref(), c.as_ref()),
            (&Ok(7), &Ok(7), &Ok(7))
        );
        assert_eq!(made.load(Ordering::SeqCst), 1);
        let other = reads.once("clouddns", || async { 9u8 }).await;
        assert_eq!(*other, 9);
        // A key taken by another type is read again, unshared.
        let again = reads.once("route53", || async { 3u8 }).await;
        assert_eq!(*again, 3);
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }
}

#[cfg(test)]
mod bound_tests {
    //! The promise that each call of a record's read is bounded, tried by
    //! a Route 53 that answers late or never.

    use std::sync::Arc;

    use super::*;
    use crate::cloud::{
        ChangeInfo, Dns, DnsChange, ErrorKind, HealthCheck, HostedZone, fake::FakeCloud,
    };

    /// Route 53 slowed: the zone's lookup answers after `zone` (`None`:
    /// never, a us-east-1 that hangs rather than refuses), the record's
    /// listing after `records`. Nothing else is asked of it.
    struct Slow {
        zone: Option<Duration>,
        records: Duration,
    }

    fn not_asked(op: &'static str) -> CloudError {
        CloudError::new("route53", op, "-", "global", ErrorKind::Client, "not asked")
    }

    #[async_trait]
    impl Dns for Slow {
        async fn find_zone(&self, name: &str) -> Result<Option<HostedZone>, CloudError> {
            let Some(after) = self.zone else {
                return std::future::pending().await;
            };
            tokio::time::sleep(after).await;
            Ok(Some(HostedZone {
                id: "Z1".into(),
                name: name.into(),
            }))
        }
        async fn zone_features(
            &self,
            _: &HostedZone,
        ) -> Result<crate::cloud::ZoneFeatures, CloudError> {
            tokio::time::sleep(self.records).await;
            Ok(crate::cloud::ZoneFeatures::default())
        }
        async fn protections(
            &self,
            _: &HostedZone,
        ) -> Result<Vec<crate::cloud::Protection>, CloudError> {
            tokio::time::sleep(self.records).await;
            Ok(Vec::new())
        }
        async fn read_records(
            &self,
            _: &HostedZone,
            name: &str,
            rtype: &str,
        ) -> Result<Vec<DnsRecord>, CloudError> {
            tokio::time::sleep(self.records).await;
            let value = "api-use1.example.com.".to_string();
            Ok(vec![DnsRecord::simple(
                name.into(),
                rtype,
                Some(60),
                vec![value],
            )])
        }
        async fn apply_changes(
            &self,
            _: &HostedZone,
            _: &[DnsChange],
            _: &str,
        ) -> Result<ChangeInfo, CloudError> {
            Err(not_asked("ChangeResourceRecordSets"))
        }
        async fn change_status(&self, _: &str) -> Result<ChangeInfo, CloudError> {
            Err(not_asked("GetChange"))
        }
        async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
            Err(not_asked("ListHealthChecks"))
        }
        async fn create_health_check(&self, _: &HealthCheck) -> Result<HealthCheck, CloudError> {
            Err(not_asked("CreateHealthCheck"))
        }
        async fn delete_health_check(&self, _: &str) -> Result<(), CloudError> {
            Err(not_asked("DeleteHealthCheck"))
        }
        async fn list_records(
            &self,
            _: &HostedZone,
            _: &str,
        ) -> Result<Vec<DnsRecord>, CloudError> {
            Err(not_asked("ListResourceRecordSets"))
        }
    }

    /// Reads payments' `api` record (read through Route 53's API) with
    /// Route 53 slowed as `slow`, each call bounded by 5 s.
    async fn read_api(slow: Slow) -> Result<Option<Vec<DnsRecord>>, CloudError> {
        let plan = crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .expect("payments");
        let api = (plan.spec.dns.iter().find(|d| d.id == "api")).expect("its api record");
        assert!(api.read_by_api());
        let mut clouds = FakeCloud::new().clouds();
        clouds.dns = Arc::new(slow);
        api.read(&clouds, Duration::from_secs(5)).await
    }

    /// Regression (one bound wrapped both calls, halving each one's time
    /// and naming a hung zone lookup as the listing it never reached): a
    /// lookup that never answers fails after the bound as its own call's
    /// connection failure; two calls of 3 s each fit a bound of 5 s each.
    #[tokio::test(start_paused = true)]
    async fn each_call_of_a_record_read_is_bounded_and_named_on_its_own() {
        let started = tokio::time::Instant::now();
        let hung = Slow {
            zone: None,
            records: Duration::ZERO,
        };
        let e = read_api(hung)
            .await
            .expect_err("a hung lookup is no answer");
        assert_eq!(
            (e.operation, e.kind),
            ("ListHostedZonesByName", ErrorKind::Connection),
            "{e:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let late = Slow {
            zone: Some(Duration::from_secs(3)),
            records: Duration::from_secs(3),
        };
        let read = read_api(late).await.expect("each call within its bound");
        assert_eq!(read.map(|r| r.len()), Some(1));
    }

    /// A protections list that never answers is no answer after
    /// [`PROTECTIONS_BOUND`] (every reader of them is beside the recovery
    /// path), said as a connection failure: never an empty list.
    #[tokio::test(start_paused = true)]
    async fn a_protections_read_that_never_answers_ends_at_its_bound() {
        let plan = crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .expect("payments");
        let records = by_zone(switching(&plan))
            .into_values()
            .next()
            .expect("a zone");
        let z = records[0].zone();
        let want: Vec<DnsRecord> = (records.iter())
            .flat_map(|d| d.wanted(&plan, "us-east-1", None))
            .collect();
        let mut clouds = FakeCloud::new().clouds();
        clouds.dns = Arc::new(Slow {
            zone: Some(Duration::ZERO),
            records: Duration::from_secs(24 * 3600),
        });
        let found = ZoneFound {
            handle: "Z1".into(),
            dns_name: "example.com.".into(),
        };
        let started = tokio::time::Instant::now();
        let e = holding(&clouds, (z, &found), &want)
            .await
            .expect_err("no answer is not an empty list");
        assert_eq!(e.kind, ErrorKind::Connection, "{e:?}");
        assert_eq!(started.elapsed(), PROTECTIONS_BOUND);
    }
}
