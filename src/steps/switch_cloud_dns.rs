//! `switch-cloud-dns`: point a `[[cloud_dns]]` record set at the target
//! region's value with one atomic Cloud DNS change, and wait until Cloud
//! DNS says it is `done`.
//!
//! Read, decide, act: the record set is read first (`resourceRecordSets.list`
//! by name and type) and [`decide`] (pure) says what to do with the read:
//! nothing (it already holds the target's value and TTL: a rerun, or a
//! resume after a crash whose change had landed), or one change whose
//! deletion is the record set exactly as read and whose addition is the
//! target's. Cloud DNS applies a change whole or not at all and refuses it
//! (412 `conditionNotMet`) when a deletion does not match the zone's data,
//! so a record changed between the read and the change (another run,
//! someone at the console) is never overwritten blindly: the step reads it
//! again and, unless it already holds the target's value (this run's own
//! change whose answer was lost), fails naming the record, zone and project.
//! The change is then polled with `changes.get` at the run's pace until
//! `done` ([`wait_for`]) and the record set read back. A step that finds
//! the record already switched waits on the zone's pending changes
//! (`changes.list`): after a crash, its own change may still be on its way
//! to the name servers, and the RTO clock must not stop before it is done.
//!
//! Like Route 53's `verify-dns` after `switch-dns`, the step ends when the
//! change is in effect and read back, so it ends the RTO clock.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{CloudRecordSet, gcp_dns};
use crate::steps::graph::{Builder, Phase};

/// Switch one Cloud DNS record set to the target region's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchCloudDns {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The managed zone's name.
    pub zone: String,
    /// The record's fully qualified name.
    pub name: String,
    /// The record's type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Its TTL.
    pub ttl: i64,
    /// Target region.
    pub region: String,
    /// The target region's value.
    pub value: String,
    /// Every region's value, to name the region a record set points at.
    pub targets: Vec<(String, String)>,
}

/// Part of the recovery; ends the RTO clock (the change done and the record
/// read back, as `verify-dns` ends it for Route 53); reversible (switch it
/// back).
pub const TRAITS: Traits = Traits {
    rto_end: Some("the Cloud DNS change done and the record set read back"),
    time: Cost {
        calls: &[
            "clouddns:resourceRecordSets.list",
            "clouddns:changes.create",
            "clouddns:resourceRecordSets.list",
        ],
        waits: &["clouddns:changes.create"],
        polls: Some("clouddns:changes.get"),
    },
    ..Traits::RECOVERY
};

/// A failover switches every records-mode Cloud DNS record of the plan to
/// the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<SwitchCloudDns> = (b.plan.spec.cloud_dns.iter())
        // Health-check records are switch-control's (no Cloud DNS call).
        .filter(|r| r.switch == crate::plan::kinds::CloudSwitch::Records)
        .filter_map(|r| {
            Some(SwitchCloudDns {
                resource: r.id.clone(),
                project: r.project.clone(),
                zone: r.zone.clone(),
                name: r.name.clone(),
                rtype: r.rtype.clone(),
                ttl: r.ttl,
                // The target site's GCP region (plan::sites).
                region: r.sites.gcp(b.target).to_string(),
                value: r.targets.get(r.sites.gcp(b.target))?.clone(),
                targets: (r.targets.iter())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "one Cloud DNS change in zone {} (project {}): {} {} → {}, wait until done",
            s.zone, s.project, s.name, s.rtype, s.value
        );
        b.add(
            StepKind::SwitchCloudDns(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudDns),
            vec![s.resource],
            description,
        );
    }
}

/// What a record set's read says to do to point it at a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsNext {
    /// It already holds the value and TTL: nothing to do.
    Done,
    /// One change: delete this record set exactly as read (`None`: there
    /// is none) and add the wanted one.
    Swap(Option<CloudRecordSet>),
    /// It cannot be swapped (why).
    Refuse(String),
}

/// A DNS value as compared: no trailing dot, lower case.
fn norm(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether record set `r` holds exactly `want`'s value and TTL.
pub fn holds(r: &CloudRecordSet, want: &CloudRecordSet) -> bool {
    !r.routed
        && r.ttl == want.ttl
        && r.rrdatas.len() == want.rrdatas.len()
        && (r.rrdatas.iter().zip(&want.rrdatas)).all(|(a, b)| norm(a) == norm(b))
}

/// Decides what a switch to `want` does with `read` (pure).
pub fn decide(read: Option<&CloudRecordSet>, want: &CloudRecordSet) -> DnsNext {
    match read {
        Some(r) if r.routed => DnsNext::Refuse(
            "it has a routing policy (geo, weighted or failover), which a records-mode switch does not replace".into(),
        ),
        Some(r) if holds(r, want) => DnsNext::Done,
        other => DnsNext::Swap(other.cloned()),
    }
}

/// What a switch-cloud-dns step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchCloudDnsOutput {
    /// The record.
    pub name: String,
    /// The managed zone.
    pub zone: String,
    /// The project.
    pub project: String,
    /// Its values before.
    pub before: Vec<String>,
    /// Its values after.
    pub after: Vec<String>,
    /// The change sent, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Set when the change's answer was a refusal and the record read
    /// again already held the target's value (this run's own change whose
    /// answer was lost, or another run's identical switch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found_switched: bool,
    /// The zone's changes found pending when the record was already
    /// switched, waited on until done (a resumed run: its own change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waited_changes: Vec<String>,
    /// Whether this step changed the record.
    pub changed: bool,
}

impl StepOutput for SwitchCloudDnsOutput {
    const KIND: KindName = KindName::SwitchCloudDns;
}

impl SwitchCloudDns {
    fn want(&self) -> CloudRecordSet {
        CloudRecordSet {
            name: self.name.clone(),
            rtype: self.rtype.clone(),
            ttl: self.ttl,
            rrdatas: vec![self.value.clone()],
            routed: false,
            primary_backup: None,
        }
    }

    fn what(&self) -> String {
        format!("cloud dns {} {}", self.name, self.rtype)
    }

    async fn read(&self, cx: &Cx<'_>) -> Result<Option<CloudRecordSet>, StepFailure> {
        Ok((cx.clouds.cloud_dns)
            .read_record_set(&self.project, &self.zone, &self.name, &self.rtype)
            .await?)
    }

    /// How a read shows: its values and the region they name.
    fn shows(&self, r: Option<&CloudRecordSet>) -> String {
        let Some(r) = r else {
            return "missing".into();
        };
        let region = (r.rrdatas.as_slice().first())
            .filter(|_| r.rrdatas.len() == 1)
            .and_then(|v| self.targets.iter().find(|(_, t)| norm(t) == norm(v)))
            .map_or("no region of the plan", |(k, _)| k.as_str());
        format!("{} ({region}), TTL {}", r.rrdatas.join(" "), r.ttl)
    }

    /// Polls change `id` with the run's pace until Cloud DNS says `done`.
    async fn done(&self, cx: &Cx<'_>, id: &str) -> Result<(), StepFailure> {
        let (p, z) = (self.project.as_str(), self.zone.as_str());
        wait_for(
            cx,
            &format!(
                "Cloud DNS change {id} in zone {z} ({}) to be done",
                self.name
            ),
            || async {
                let c = (cx.clouds.cloud_dns).dns_change(p, z, id).await?;
                Ok(c.done.then_some(()))
            },
        )
        .await
    }

    /// Waits on every change pending in the zone (a switch already made
    /// may still be on its way to the name servers); returns their ids.
    async fn wait_pending(&self, cx: &Cx<'_>) -> Result<Vec<String>, StepFailure> {
        let (p, z) = (self.project.as_str(), self.zone.as_str());
        let pending = (cx.clouds.cloud_dns).pending_dns_changes(p, z).await?;
        for c in &pending {
            self.done(cx, &c.id).await?;
        }
        Ok(pending.into_iter().map(|c| c.id).collect())
    }

    /// After Cloud DNS refused the swap whole (`why`): reads the record
    /// again; `Ok` when it already holds `want` (this run's own change whose
    /// answer was lost, or another run's), else the refusal naming what
    /// was read before (`deletion`) and now.
    async fn judge_refusal(
        &self,
        cx: &Cx<'_>,
        want: &CloudRecordSet,
        deletion: Option<&CloudRecordSet>,
        why: &str,
    ) -> Result<(), StepFailure> {
        let now = self.read(cx).await?;
        if decide(now.as_ref(), want) == DnsNext::Done {
            tracing::warn!(
                record = self.name,
                zone = self.zone.as_str(),
                "change refused but the record already holds the target's value"
            );
            return Ok(());
        }
        Err(self.refused(&format!(
            "Cloud DNS refused the change ({why}): the record changed after it was read (read {}, now {}); nothing was overwritten",
            self.shows(deletion),
            self.shows(now.as_ref())
        )))
    }

    fn refused(&self, why: &str) -> StepFailure {
        StepFailure::state(
            format!(
                "Cloud DNS record {} {} in zone {} (project {}): {why}",
                self.name, self.rtype, self.zone, self.project
            ),
            format!(
                "read it with `gcloud dns record-sets describe {} --type {} --zone {} --project {}`; fix it, then resume (the step reads the record first)",
                self.name, self.rtype, self.zone, self.project
            ),
            &self.name,
            &self.region,
        )
    }
}

impl SwitchCloudDns {
    /// What its record holds now, for preflight: missing, unreadable, a
    /// routing policy a records-mode switch does not replace, or its value
    /// and the region it names.
    async fn record_findings(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        match self.read(cx).await {
            Ok(None) => vec![Finding::missing(&what, gcp_dns::REGION)],
            Ok(Some(r)) if r.routed => vec![routed(&what)],
            Ok(Some(r)) => vec![Finding::ok(&what, gcp_dns::REGION, self.shows(Some(&r)))],
            Err(StepFailure::Cloud(e)) => vec![Finding::unreadable(&what, gcp_dns::REGION, &e)],
            Err(e) => vec![Finding::blocks(
                &what,
                gcp_dns::REGION,
                "could not be read",
                e.to_string(),
            )],
        }
    }
}

/// A record with a routing policy, which a records-mode switch does not
/// replace.
fn routed(what: &str) -> Finding {
    Finding::blocks(
        what,
        gcp_dns::REGION,
        "routing policy",
        "a records-mode switch does not replace a record with a routing policy",
    )
}

#[async_trait]
impl super::Ready for SwitchCloudDns {
    /// What `status`'s row of the record (read through the traffic role:
    /// its value, the region it names, or why it could not be read) cannot
    /// say: a routing policy this switch does not replace. The rest would
    /// say it twice.
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        match self.read(cx).await {
            Ok(Some(r)) if r.routed => vec![routed(&self.what())],
            Ok(_) | Err(_) => Vec::new(),
        }
    }
}

#[async_trait]
impl Action for SwitchCloudDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        let zone = (cx.clouds.cloud_dns)
            .describe_zone(&self.project, &self.zone)
            .await;
        match zone {
            Ok(None) => {
                return vec![Finding::blocks(
                    format!("cloud dns zone {}", self.zone),
                    gcp_dns::REGION,
                    "missing",
                    format!(
                        "managed zone {} does not exist in project {}",
                        self.zone, self.project
                    ),
                )];
            }
            Ok(Some(z)) => {
                let (name, dns) = (norm(&self.name), norm(&z.dns_name));
                if name != dns && !name.ends_with(&format!(".{dns}")) {
                    return vec![Finding::blocks(
                        &what,
                        gcp_dns::REGION,
                        format!("zone {} serves {}", z.name, z.dns_name),
                        format!(
                            "{} is not inside managed zone {} ({})",
                            self.name, z.name, z.dns_name
                        ),
                    )];
                }
            }
            Err(e) => return vec![Finding::unreadable(&what, gcp_dns::REGION, &e)],
        }
        self.record_findings(cx).await
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let current = self.read(cx).await?;
        Ok(vec![Planned {
            call: "clouddns:changes.create".into(),
            resource: self.name.clone(),
            region: gcp_dns::REGION.into(),
            current: self.shows(current.as_ref()),
            desired: format!("{} ({}), TTL {}", self.value, self.region, self.ttl),
            change: decide(current.as_ref(), &self.want()) != DnsNext::Done,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, z) = (self.project.as_str(), self.zone.as_str());
        let want = self.want();
        let before = self.read(cx).await?;
        let mut out = SwitchCloudDnsOutput {
            name: self.name.clone(),
            zone: z.to_string(),
            project: p.to_string(),
            before: before
                .as_ref()
                .map(|r| r.rrdatas.clone())
                .unwrap_or_default(),
            ..SwitchCloudDnsOutput::default()
        };
        let deletion = match decide(before.as_ref(), &want) {
            DnsNext::Refuse(why) => return Err(self.refused(&why)),
            DnsNext::Done => {
                // Already switched (a rerun, or a resume after a crash whose
                // change had landed): its change may still be on its way to
                // the name servers; wait for the zone's pending changes.
                out.waited_changes = self.wait_pending(cx).await?;
                tracing::info!(
                    record = self.name,
                    zone = z,
                    "already at the target: no change"
                );
                out.after = want.rrdatas;
                return out.to_output();
            }
            DnsNext::Swap(deletion) => deletion,
        };
        cx.fenced(
            &format!("clouddns:changes.create of {}", self.name),
            &self.region,
        )
        .await?;
        let sent = (cx.clouds.cloud_dns)
            .swap_record_set(p, z, deletion.as_ref(), &want)
            .await;
        let change = match sent {
            Ok(c) => c,
            Err(e) if gcp_dns::is_conflict(&e) => {
                // Refused whole: read again and judge.
                self.judge_refusal(cx, &want, deletion.as_ref(), &e.message)
                    .await?;
                out.found_switched = true;
                out.after = want.rrdatas;
                return out.to_output();
            }
            Err(e) => return Err(e.into()),
        };
        out.change = Some(change.id.clone());
        out.changed = true;
        if !change.done {
            self.done(cx, &change.id).await?;
        }
        let after = self.read(cx).await?;
        if decide(after.as_ref(), &want) != DnsNext::Done {
            return Err(self.refused(&format!(
                "after change {} it holds {}, not {}",
                change.id,
                self.shows(after.as_ref()),
                self.value
            )));
        }
        out.after = after.map(|r| r.rrdatas).unwrap_or_default();
        tracing::info!(record = self.name, zone = z, change = change.id, "switched");
        out.to_output()
    }
}

#[cfg(test)]
mod tests {
    //! The choice (pure), and the step on the fake cloud.

    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::Clouds;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::metered::Metered;

    const P: &str = "drctl-emu";
    const Z: &str = "orders-zone";
    const NAME: &str = "orders.gcp.example.com.";
    const HOME: &str = "orders-api-usc1.example.com.";
    const TARGET: &str = "orders-api-use4.example.com.";

    fn rs(value: &str, ttl: i64) -> CloudRecordSet {
        CloudRecordSet {
            name: NAME.into(),
            rtype: "CNAME".into(),
            ttl,
            rrdatas: vec![value.into()],
            routed: false,
            primary_backup: None,
        }
    }

    #[test]
    fn a_record_at_the_target_is_left_alone_else_swapped_as_read() {
        let want = rs(TARGET, 60);
        assert_eq!(
            decide(Some(&rs("ORDERS-API-USE4.example.com", 60)), &want),
            DnsNext::Done
        );
        assert_eq!(
            decide(Some(&rs(HOME, 60)), &want),
            DnsNext::Swap(Some(rs(HOME, 60)))
        );
        // The target's value under another TTL is swapped too (TTL included).
        assert_eq!(
            decide(Some(&rs(TARGET, 300)), &want),
            DnsNext::Swap(Some(rs(TARGET, 300)))
        );
        assert_eq!(decide(None, &want), DnsNext::Swap(None));
        let mut routed = rs(TARGET, 60);
        routed.routed = true;
        assert!(matches!(decide(Some(&routed), &want), DnsNext::Refuse(_)));
    }

    fn plan() -> crate::plan::Plan {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
        let loaded = crate::plan::load(&[path]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.plans.into_iter().next().expect("orders-gcp")
    }

    fn world() -> FakeCloud {
        let f = FakeCloud::new();
        f.add_cloud_zone(P, Z, "gcp.example.com.");
        f.put_cloud_record(P, Z, rs(HOME, 60));
        f
    }

    /// The switch-cloud-dns step of a failover of orders-gcp to us-east4.
    async fn run_step(clouds: &Clouds) -> Result<SwitchCloudDnsOutput, StepFailure> {
        let plan = plan();
        let g = crate::steps::graph::compile(&plan, "us-east4").expect("graph");
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::SwitchCloudDns(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a switch-cloud-dns step");
        assert_eq!(
            (step.value.as_str(), step.region.as_str()),
            (TARGET, "us-east4")
        );
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T070000Z-orders-gcp-r1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(clouds, &plan, "us-east4", &outputs, &g.steps)
        };
        let v = step.run(&cx).await?;
        Ok(SwitchCloudDnsOutput::read(&v).expect("its outputs"))
    }

    /// `status`'s readiness says only what its row of the record (read
    /// through the traffic role) cannot: a routing policy a records-mode
    /// switch does not replace. A plain record, or a missing one, is the
    /// row's to show, not said twice.
    #[tokio::test]
    async fn status_hears_of_the_record_from_the_step_only_for_a_routing_policy() {
        let plan = plan();
        let plan = &plan;
        let said = |f: FakeCloud| async move {
            let clouds = f.clouds();
            let all = crate::steps::readiness(&clouds, plan, "us-east4", Duration::from_secs(5));
            (all.await.into_iter())
                .filter(|x| x.resource.starts_with("cloud dns"))
                .map(|x| x.state)
                .collect::<Vec<_>>()
        };
        assert_eq!(said(world()).await, Vec::<String>::new());
        let missing = FakeCloud::new();
        missing.add_cloud_zone(P, Z, "gcp.example.com.");
        assert_eq!(said(missing).await, Vec::<String>::new());
        let routed = FakeCloud::new();
        routed.add_cloud_zone(P, Z, "gcp.example.com.");
        routed.put_cloud_record(
            P,
            Z,
            CloudRecordSet {
                routed: true,
                ..rs(HOME, 60)
            },
        );
        assert_eq!(said(routed).await, ["routing policy"]);
    }

    /// Switched: one change (deleting the record as read), polled to done,
    /// read back; run again, nothing is sent.
    #[tokio::test]
    async fn the_record_is_swapped_in_one_change_waited_on_and_read_back() {
        let f = world();
        let (clouds, log) = Metered::wrap(f.clouds());
        let out = run_step(&clouds).await.expect("switched");
        assert_eq!(
            (out.before.clone(), out.after.clone()),
            (vec![HOME.to_string()], vec![TARGET.to_string()])
        );
        assert!(out.changed && out.change.is_some(), "{out:?}");
        assert_eq!(f.cloud_record(P, Z, NAME, "CNAME"), Some(rs(TARGET, 60)));
        let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
        let n = |l: &str| labels.iter().filter(|x| **x == l).count();
        assert_eq!(n("clouddns:changes.create"), 1, "{labels:?}");
        assert!(n("clouddns:changes.get") >= 1, "{labels:?}");

        let again = run_step(&clouds).await.expect("already switched");
        assert!(!again.changed && again.change.is_none(), "{again:?}");
        assert_eq!(f.state().writes, [format!("changes.create {NAME}")]);
    }

    /// A resumed run (the change sent before a crash, still pending) finds
    /// the record switched and waits on the change, sending none.
    #[tokio::test]
    async fn a_resumed_run_waits_on_its_pending_change_and_sends_none() {
        let f = world();
        let c = f.clouds();
        let first = (c.cloud_dns)
            .swap_record_set(P, Z, Some(&rs(HOME, 60)), &rs(TARGET, 60))
            .await
            .expect("the first run's change");
        let out = run_step(&c).await.expect("waited");
        assert!(!out.changed, "{out:?}");
        assert_eq!(out.waited_changes, [first.id]);
        assert_eq!(f.state().writes.len(), 1);
        let again = run_step(&c).await.expect("nothing pending now");
        assert!(again.waited_changes.is_empty(), "{again:?}");
    }

    /// Another writer between the read and the change: Cloud DNS refuses
    /// the change, the step reads again and fails naming record, zone and
    /// project; the other writer's value stands.
    #[tokio::test]
    async fn a_record_changed_after_the_read_is_refused_not_overwritten() {
        let f = world();
        f.race_cloud_record(P, Z, rs("someone-else.example.com.", 60));
        let e = run_step(&f.clouds()).await.expect_err("refused");
        let text = e.to_string();
        assert!(
            matches!(e, StepFailure::State { .. })
                && [NAME, Z, P, "someone-else.example.com."]
                    .iter()
                    .all(|w| text.contains(w)),
            "{text}"
        );
        assert_eq!(
            f.cloud_record(P, Z, NAME, "CNAME"),
            Some(rs("someone-else.example.com.", 60))
        );
        assert!(f.state().writes.is_empty());
    }

    /// A refusal whose record already holds the target's value (the run's
    /// own change, its answer lost) ends the switch as done.
    #[tokio::test]
    async fn a_refusal_of_a_record_already_switched_is_done() {
        let f = world();
        f.race_cloud_record(P, Z, rs(TARGET, 60));
        let out = run_step(&f.clouds()).await.expect("found switched");
        assert!(out.found_switched && !out.changed, "{out:?}");
    }

    #[tokio::test]
    async fn a_missing_zone_is_an_error_naming_it() {
        let f = FakeCloud::new();
        let e = run_step(&f.clouds()).await.expect_err("no zone");
        assert!(e.to_string().contains(Z), "{e}");
    }
}
