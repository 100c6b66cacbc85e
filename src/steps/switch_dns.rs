//! `switch-dns`: move a plan's records-mode records in one zone to the
//! target region in one atomic change (`verify-dns` then waits until it is
//! in effect and reads them back), whatever the zone's kind: a Route 53
//! hosted zone, a Cloud DNS managed zone. The kind answers through the
//! traffic role ([`Switching`], [`ZoneApi`]); this step reads, decides and
//! judges the same way for every kind.
//!
//! One change per zone means clients never see half a switch (the API
//! record moved, the database record not). Route 53 counts an UPSERT twice
//! toward its 1,000-record batch limit, so its changes are split at 500
//! (never inside a compare-and-swap).
//!
//! Each record change is a compare-and-swap: the change DELETEs exactly the
//! set the step read (values, TTL, weight, an alias's target) and CREATEs
//! the new one. A change is all-or-nothing, so a writer whose read is
//! stale (a process that slept through its lease, then woke) is refused by
//! the provider instead of overwriting a newer run's decision.
//!
//! A refusal, or an answer that never came, is judged from the records read
//! again ([`judge_refusal`]): a record that moved elsewhere is another
//! writer's doing and fails the step; records that all already are as
//! wanted are this run's own change, whose answer was lost on the way back,
//! and the switch is done.

use async_trait::async_trait;
use chrono::Utc;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::records::{
    SwitchDnsOutput, desired, matches, records_of, show, submit_swaps, swaps, zone_finding,
    zone_found, zone_now,
};
use super::{Action, Cost, Cx, Finding, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::DnsRecord;
use crate::plan::Plan;
use crate::plan::kinds::traffic::{
    self, Switching, Zone, ZoneCalls, ZoneFound, by_zone, switching,
};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Switch every records-mode record of the plan in one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchDns {
    /// The zone, as its kind names the step's subject.
    pub zone: String,
    /// Target region.
    pub region: String,
    /// The records switched, by name.
    pub records: Vec<String>,
    /// Their plan ids.
    #[serde(skip)]
    pub ids: Vec<String>,
    /// The zone kind's calls (the step's cost).
    #[serde(serialize_with = "provider_calls")]
    pub calls: ZoneCalls,
}

/// Shows a switch's calls as the provider's change call.
fn provider_calls<S: Serializer>(c: &ZoneCalls, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(out_call(c))
}

/// Part of the recovery: traffic moves here (its calls are its zone
/// kind's: [`SwitchDns::cost`]).
pub const TRAITS: Traits = Traits::RECOVERY;

/// What the retired `switch-cloud-dns` (one Cloud DNS record set switched
/// and its change waited for, in one step) cost, and where its journals
/// stop the RTO clock.
pub const RETIRED_CLOUD: Traits = Traits {
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

/// The records a run of `mode` switches: every records-mode record in a
/// failover, the records that follow the restored database in a restore,
/// none in a reprotection or a drill.
fn switched(mode: &RunMode, d: &dyn Switching) -> bool {
    match mode {
        m if m.fails_over() => true,
        RunMode::Restore { database, .. } => d.follows() == Some(database.as_str()),
        RunMode::Failover { .. } | RunMode::Reprotect | RunMode::Drill { .. } => false,
    }
}

/// One switch per zone.
pub fn compile(b: &mut Builder<'_>) {
    let zones = by_zone(switching(b.plan).filter(|d| switched(b.mode, *d)));
    let target = b.target;
    let steps: Vec<(SwitchDns, String)> = (zones.into_iter())
        .map(|(zone, records)| {
            let api = records[0].zone().api;
            let changes: Vec<String> = records.iter().map(|d| d.change(target)).collect();
            let description = format!(
                "one {} change in {zone}: {}",
                api.provider(),
                changes.join("; ")
            );
            let step = SwitchDns {
                region: target.to_string(),
                records: records.iter().map(|d| d.names().0.to_string()).collect(),
                ids: records.iter().map(|d| d.id().to_string()).collect(),
                calls: api.calls(),
                zone,
            };
            (step, description)
        })
        .collect();
    b.add_all(steps, StepKind::SwitchDns, |s| {
        (s.zone.clone(), s.ids.clone(), Phase::Switch)
    });
}

impl SwitchDns {
    /// What it costs: its zone kind's reads and change.
    pub fn cost(&self) -> Cost {
        Cost {
            calls: self.calls.switch,
            ..Cost::NONE
        }
    }

    /// Its records, through their traffic roles, in plan order.
    pub(super) fn roles<'p>(&self, plan: &'p Plan) -> Result<Vec<&'p dyn Switching>, StepFailure> {
        records_of(plan, &self.ids, &self.zone)
    }
}

/// What the records hold that a plain record may not replace, or whose
/// name is outside the zone (pure): one finding each.
fn record_problems(
    z: Zone<'_>,
    found: &ZoneFound,
    want: &[DnsRecord],
    cur: &[Option<DnsRecord>],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let dns = found.dns_name.trim_end_matches('.').to_ascii_lowercase();
    for (w, c) in want.iter().zip(cur) {
        let what = format!("record {} {}", w.name, w.rtype);
        let name = w.name.trim_end_matches('.').to_ascii_lowercase();
        if name != dns && !name.ends_with(&format!(".{dns}")) {
            out.push(Finding::blocks(
                &what,
                "global",
                format!("zone {} serves {}", z.name, found.dns_name),
                format!(
                    "{} is not inside zone {} ({})",
                    w.name, z.name, found.dns_name
                ),
            ));
        } else if let Some(why) = c.as_ref().and_then(|c| z.api.refuses(c)) {
            out.push(Finding::blocks(&what, "global", "routing policy", why));
        }
    }
    out
}

/// The records' problems as read now, for a zone kind whose sets may hold
/// a policy a plain record does not replace (preflight and `status`).
async fn policy_findings(
    cx: &Cx<'_>,
    records: &[&dyn Switching],
    found: &ZoneFound,
) -> Vec<Finding> {
    let z = records[0].zone();
    if !z.api.policies() {
        return Vec::new();
    }
    let want: Vec<DnsRecord> = (records.iter())
        .flat_map(|d| d.wanted(cx.plan, cx.target, None))
        .collect();
    match z.api.read(cx.clouds, z, found, &want).await {
        Ok(cur) => record_problems(z, found, &want, &cur),
        Err(e) => vec![Finding::unreadable(
            format!("records in zone {}", z.subject()),
            "global",
            &e,
        )],
    }
}

/// The protections that would refuse the switch's change, each a finding
/// that blocks (preflight and `status`): `held` as the protections gate
/// read them, else read now. A list that could not be read is said as
/// unknown, and blocks nothing: the read is beside the recovery path
/// (Route 53's API may be what is impaired), and the switch names a
/// protection if one refuses it.
async fn protection_findings(
    cx: &Cx<'_>,
    records: &[&dyn Switching],
    found: &ZoneFound,
    held: Option<&[crate::cloud::Protection]>,
) -> Vec<Finding> {
    let z = records[0].zone();
    let want: Vec<DnsRecord> = (records.iter())
        .flat_map(|d| d.wanted(cx.plan, cx.target, None))
        .collect();
    let read = match held {
        Some(held) => Ok(held.to_vec()),
        None => traffic::holding(cx.clouds, (z, found), &want).await,
    };
    match read {
        Ok(held) => (held.iter())
            .map(|p| {
                let (why, how) = traffic::held(z, found, p);
                Finding::blocks(
                    format!("record {} {}", p.name, p.rtype),
                    "global",
                    "protected",
                    format!("{why}; {how}"),
                )
            })
            .collect(),
        Err(e) => vec![Finding::unknown(
            format!("protections in zone {}", z.subject()),
            "global",
            format!(
                "not read ({}): the switch names one if it refuses",
                e.summary()
            ),
        )],
    }
}

/// What would refuse the switch's change of the sets as they are now: a
/// routing policy, a protection (read together).
async fn set_findings(
    cx: &Cx<'_>,
    records: &[&dyn Switching],
    found: &ZoneFound,
    held: Option<&[crate::cloud::Protection]>,
) -> Vec<Finding> {
    let (policies, protections) = futures::join!(
        policy_findings(cx, records, found),
        protection_findings(cx, records, found, held)
    );
    policies.into_iter().chain(protections).collect()
}

#[async_trait]
impl super::Ready for SwitchDns {
    /// What `status`'s rows of the records (read through the traffic role)
    /// cannot say: a set the switch would refuse to replace, or one a
    /// protection holds.
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let Ok(records) = self.roles(cx.plan) else {
            return Vec::new();
        };
        let z = records[0].zone();
        match z.api.find(cx.clouds, z).await {
            Ok(Some(found)) => set_findings(cx, &records, &found, None).await,
            Ok(None) | Err(_) => Vec::new(),
        }
    }
}

#[async_trait]
impl Action for SwitchDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let records = match self.roles(cx.plan) {
            Ok(r) => r,
            Err(e) => {
                return vec![Finding::blocks(
                    &self.zone,
                    "global",
                    "not in the plan",
                    e.to_string(),
                )];
            }
        };
        let z = records[0].zone();
        // The protections gate read the zone moments ago, in a run.
        let gate = cx.zones_read.and_then(|read| read.get(&z.subject()));
        let zone = match gate {
            Some((found, _)) => zone_found(z, found),
            None => zone_finding(cx, z).await,
        };
        let found = serde_json::from_value::<ZoneFound>(zone.facts.clone()).ok();
        let mut out = vec![zone];
        if let Some(found) = found {
            let held = gate.map(|(_, held)| held.as_slice());
            out.extend(set_findings(cx, &records, &found, held).await);
        }
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let records = self.roles(cx.plan)?;
        let z = records[0].zone();
        let found = zone_now(cx, z).await?;
        let want = desired(cx, &records).await?;
        let cur = z.api.read(cx.clouds, z, &found, &want).await?;
        let call = format!(
            "{} DELETE+CREATE (compare-and-swap, one change for the zone)",
            out_call(&self.calls)
        );
        Ok(want
            .iter()
            .zip(&cur)
            .map(|(w, c)| Planned {
                call: call.clone(),
                resource: format!(
                    "{} {}{}",
                    w.name,
                    w.rtype,
                    (w.set_identifier.as_ref())
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default()
                ),
                region: "global".into(),
                current: show(c),
                desired: show(&Some(w.clone())),
                change: !matches(c, w),
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let records = self.roles(cx.plan)?;
        let z = records[0].zone();
        let found = zone_now(cx, z).await?;
        let want = desired(cx, &records).await?;
        let cur = z.api.read(cx.clouds, z, &found, &want).await?;
        if let Some((w, why)) =
            (want.iter().zip(&cur)).find_map(|(w, c)| Some((w, z.api.refuses(c.as_ref()?)?)))
        {
            return Err(StepFailure::state(
                format!(
                    "{} record {} {} in zone {}: {why}",
                    z.api.provider(),
                    w.name,
                    w.rtype,
                    z.subject()
                ),
                format!(
                    "{}; remove its policy or change the plan's switch, then resume (the step reads first)",
                    z.api.look(z, &w.name, &w.rtype)
                ),
                &w.name,
                "global",
            ));
        }
        let swapped = swaps(&want, &cur);
        let mut out = SwitchDnsOutput {
            zone: found.dns_name.clone(),
            zone_id: found.handle.clone(),
            in_sync: true,
            changed: swapped.len(),
            before: cur.clone(),
            after: want.clone(),
            ..SwitchDnsOutput::default()
        };
        if swapped.is_empty() {
            // Already switched (a rerun, or a resume after a crash whose
            // change had landed): its change may still be on its way to
            // the name servers.
            tracing::info!(zone = %self.zone, "records already point at {}", cx.target);
        } else {
            let sent = submit_swaps(cx, (z, &found), &swapped).await?;
            (out.change_ids, out.in_sync) = (sent.change_ids, sent.in_effect);
            out.answers_lost = usize::from(sent.error.is_some());
        }
        // A change of this run's with no id: one whose answer was lost, or
        // an earlier attempt's, which switched some records already.
        let own = out.answers_lost > 0 || (cx.attempt > 1 && swapped.len() < want.len());
        if swapped.is_empty() || own {
            unseen(cx, z, &mut out, own).await;
        }
        out.submitted_at = Utc::now();
        out.to_output()
    }
}

/// The zone's pending changes, for `verify-dns` to wait on, where the
/// provider lists them; where it cannot (or the listing fails) and this
/// run's own change may be among them with no id (`own`), the output says
/// its effect goes unseen. Never fails the switch: its change is made.
pub(super) async fn unseen(cx: &Cx<'_>, z: Zone<'_>, out: &mut SwitchDnsOutput, own: bool) {
    match z.api.pending(cx.clouds, z).await {
        Ok(Some(pending)) => out.pending = pending,
        Ok(None) => out.unconfirmed = own,
        Err(e) => {
            tracing::warn!(zone = %z.subject(), "the zone's pending changes could not be listed: {e}");
            out.unconfirmed = own;
        }
    }
}

/// The provider's change call, as a fence names it.
fn out_call(c: &ZoneCalls) -> &'static str {
    c.switch.last().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::KindName;
    use super::super::records::{Refusal, after_refusal, judge_refusal, route53};
    use super::*;
    use crate::cloud::dns_batch::{Coalescer, Group, batches};
    use crate::cloud::{
        ChangeInfo, CloudError, Clouds, Dns, DnsChange, ErrorKind, HealthCheck, HostedZone,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Which step outputs carry the endpoint a record follows is each step
    /// kind's to say (`Traits::endpoint`), not a list here.
    #[test]
    fn the_kinds_whose_outputs_carry_an_endpoint_say_so() {
        let carrying: Vec<KindName> = (KindName::ALL.iter().copied())
            .filter(|k| k.traits().endpoint.is_some())
            .collect();
        assert_eq!(
            carrying,
            [KindName::Promote, KindName::Restore, KindName::DrillCopy,]
        );
        for k in carrying {
            let read = k.traits().endpoint.expect("declared");
            let out = serde_json::json!({ "endpoint": "db.example.rds.amazonaws.com" });
            assert_eq!(read(&out).as_deref(), Some("db.example.rds.amazonaws.com"));
            assert_eq!(read(&serde_json::json!({})), None, "{k}");
        }
        // Only promotions and a global database's failover cannot be
        // undone, and each says how to go back.
        let irreversible: Vec<KindName> = (KindName::ALL.iter().copied())
            .filter(|k| k.traits().irreversible.is_some())
            .collect();
        assert_eq!(irreversible, [KindName::Promote]);
        for k in irreversible {
            let why = k.traits().irreversible.unwrap_or_default();
            assert!(why.contains("drctl reprotect"), "{why}");
        }
    }

    fn cname(name: &str, value: &str) -> DnsRecord {
        DnsRecord::simple(name.into(), "CNAME", Some(60), vec![value.into()])
    }

    /// Route 53 that loses the answers of the change batches numbered in
    /// `lose` (0: the first that takes effect) on the way back: each is
    /// sent again (as the adapter's retry does after a dropped
    /// connection) and the caller gets the resend's answer.
    struct LosingDns {
        inner: Arc<dyn Dns>,
        applied: AtomicUsize,
        lose: Vec<usize>,
    }

    #[async_trait]
    impl Dns for LosingDns {
        async fn find_zone(&self, n: &str) -> Result<Option<HostedZone>, CloudError> {
            self.inner.find_zone(n).await
        }
        async fn zone_features(
            &self,
            z: &HostedZone,
        ) -> Result<crate::cloud::ZoneFeatures, CloudError> {
            self.inner.zone_features(z).await
        }
        async fn protections(
            &self,
            z: &HostedZone,
        ) -> Result<Vec<crate::cloud::Protection>, CloudError> {
            self.inner.protections(z).await
        }
        async fn read_records(
            &self,
            z: &HostedZone,
            n: &str,
            t: &str,
        ) -> Result<Vec<DnsRecord>, CloudError> {
            self.inner.read_records(z, n, t).await
        }
        async fn apply_changes(
            &self,
            z: &HostedZone,
            c: &[DnsChange],
            comment: &str,
        ) -> Result<ChangeInfo, CloudError> {
            let first = self.inner.apply_changes(z, c, comment).await;
            if first.is_ok()
                && self
                    .lose
                    .contains(&self.applied.fetch_add(1, Ordering::SeqCst))
            {
                return self.inner.apply_changes(z, c, comment).await;
            }
            first
        }
        async fn change_status(&self, id: &str) -> Result<ChangeInfo, CloudError> {
            self.inner.change_status(id).await
        }
        async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
            self.inner.list_health_checks().await
        }
        async fn create_health_check(&self, w: &HealthCheck) -> Result<HealthCheck, CloudError> {
            self.inner.create_health_check(w).await
        }
        async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
            self.inner.delete_health_check(id).await
        }
        async fn list_records(
            &self,
            z: &HostedZone,
            suffix: &str,
        ) -> Result<Vec<DnsRecord>, CloudError> {
            self.inner.list_records(z, suffix).await
        }
    }

    /// `f` with a zone holding `api0..apiN` at home, behind Route 53 that
    /// loses the answers of the batches numbered in `lose`.
    fn losing_world(
        f: crate::cloud::fake::FakeCloud,
        n: usize,
        lose: &[usize],
    ) -> (crate::cloud::fake::FakeCloud, LosingDns, HostedZone) {
        let z = f.add_zone("example.com.");
        for i in 0..n {
            f.put_record(
                "example.com.",
                cname(&format!("api{i}.example.com."), "home."),
            );
        }
        let dns = LosingDns {
            inner: f.clouds().dns,
            applied: AtomicUsize::new(0),
            lose: lose.to_vec(),
        };
        (f, dns, z)
    }

    fn swap_of(i: usize) -> Vec<DnsChange> {
        let (was, want) = pair_of(i);
        DnsChange::swap(was.as_ref(), &want)
    }

    /// Record `api{i}` as read at home, and as wanted at the target.
    fn pair_of(i: usize) -> (Option<DnsRecord>, DnsRecord) {
        let name = format!("api{i}.example.com.");
        (Some(cname(&name, "home.")), cname(&name, "target."))
    }

    /// The zone of `losing_world` as the traffic role finds it, and the
    /// clouds that reach it through `dns`.
    fn through(
        f: &crate::cloud::fake::FakeCloud,
        dns: LosingDns,
        z: &HostedZone,
    ) -> (Clouds, ZoneFound) {
        let found = ZoneFound {
            handle: z.id.clone(),
            dns_name: z.name.clone(),
        };
        let clouds = Clouds {
            dns: Arc::new(dns),
            ..f.clouds()
        };
        (clouds, found)
    }

    #[test]
    fn a_refusal_is_judged_from_the_records_read_again() {
        let sets = [pair_of(0)];
        // As wanted: the change is in effect.
        let wanted = Some(cname("api0.example.com.", "TARGET"));
        assert_eq!(judge_refusal(&sets, &[wanted]), Refusal::AlreadyAsWanted);
        // Elsewhere: another writer.
        let elsewhere = Some(cname("api0.example.com.", "elsewhere."));
        assert_eq!(judge_refusal(&sets, &[elsewhere]), Refusal::Changed(0));
        // Gone since the read: another writer too.
        assert_eq!(judge_refusal(&sets, &[None]), Refusal::Changed(0));
        // Of two sets, the second moved elsewhere.
        let two = [pair_of(0), pair_of(1)];
        let moved = [
            Some(cname("api0.example.com.", "home.")),
            Some(cname("api1.example.com.", "elsewhere.")),
        ];
        assert_eq!(judge_refusal(&two, &moved), Refusal::Changed(1));
        // Of two sets (a change of several batches), the first landed as
        // wanted and the second is as read: nobody else moved anything.
        let half = [
            Some(cname("api0.example.com.", "target.")),
            Some(cname("api1.example.com.", "home.")),
        ];
        assert_eq!(judge_refusal(&two, &half), Refusal::Provider);
        // As read: the provider's own reason.
        let read = Some(cname("api0.example.com.", "home."));
        assert_eq!(judge_refusal(&sets, &[read]), Refusal::Provider);
        // A lone CREATE of a set that was absent, now present as wanted.
        let create = [(None, cname("new.example.com.", "x."))];
        assert_eq!(
            judge_refusal(&create, &[Some(cname("new.example.com.", "x."))]),
            Refusal::AlreadyAsWanted
        );
        // Nothing swapped: nothing to judge by.
        assert_eq!(judge_refusal(&[], &[]), Refusal::Provider);
    }

    /// Regression (`lost_change_answer_read_as_another_run`): a batch whose
    /// answer was lost was sent again, refused (its DELETE no longer
    /// matched: the first send had replaced that value), and reported as
    /// "another run switched it".
    #[tokio::test(start_paused = true)]
    async fn regression_lost_change_answer_read_as_another_run() {
        let (f, dns, z) = losing_world(crate::cloud::fake::FakeCloud::new(), 2, &[0]);
        let (clouds, found) = through(&f, dns, &z);
        let zone = (route53("example.com."), &found);
        let e = (clouds.dns.apply_changes(&z, &swap_of(0), "run").await)
            .expect_err("the resend is refused");
        assert_eq!(e.kind, ErrorKind::Client, "{e}");
        after_refusal(&clouds, zone, &[pair_of(0)], e)
            .await
            .expect("the records read back as wanted: this run's own change");
        assert_eq!(
            f.state().records[&z.id],
            [
                cname("api1.example.com.", "home."),
                cname("api0.example.com.", "target.")
            ]
        );
        assert_eq!(
            f.state().writes.len(),
            1,
            "the first send took effect, once"
        );

        // No answer at all (every try's answer lost): read back the same way.
        let dropped = || {
            CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                "example.com.",
                "global",
                ErrorKind::Connection,
                "the connection closed before an answer",
            )
        };
        after_refusal(&clouds, zone, &[pair_of(0)], dropped())
            .await
            .expect("in effect");
        // A change that never took effect keeps its own error, and says
        // nothing of another run.
        let e = after_refusal(&clouds, zone, &[pair_of(1)], dropped())
            .await
            .expect_err("not in effect");
        assert!(e.to_string().contains("connection closed"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_of_a_batch_of_several_plans_is_each_plans_own_change() {
        // In a world where changes take time, p0's change goes first and
        // alone; p1's and p2's queue behind it and go in one batch, whose
        // answer is lost. The coalescer's resend is refused whole, then
        // each plan's alone; each plan's step reads its records back as
        // wanted.
        let model = crate::cloud::model::Model::aws().unwrap();
        let timed = crate::cloud::fake::FakeCloud::timed(model, 9);
        let (f, dns, z) = losing_world(timed, 3, &[1]);
        let (clouds, found) = through(&f, dns, &z);
        let q = Coalescer::new(
            model.route53.clone(),
            "20261124T100000Z-p-0001",
            "us-east-1",
        );
        let group = |i: usize| Group {
            plan: format!("p{i}"),
            changes: swap_of(i),
        };
        let dns = clouds.dns.as_ref();
        let (a, b, c) = tokio::join!(
            q.submit(dns, &z, group(0), "p0"),
            q.submit(dns, &z, group(1), "p1"),
            q.submit(dns, &z, group(2), "p2"),
        );
        assert_eq!(a.expect("p0's answer came").plans, ["p0"]);
        for (i, r) in [(1, b), (2, c)] {
            let e = r.expect_err("the resend of a lost batch is refused");
            after_refusal(&clouds, (route53("example.com."), &found), &[pair_of(i)], e)
                .await
                .unwrap_or_else(|e| panic!("p{i} is done: {e}"));
        }
        let recs = &f.state().records[&z.id];
        assert!(recs.iter().all(|r| r.values == ["target."]), "{recs:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_alias_is_swapped_by_its_target_as_read_never_upserted() {
        let f = crate::cloud::fake::FakeCloud::new();
        let z = f.add_zone("example.com.");
        let alias = DnsRecord {
            ttl: None,
            values: Vec::new(),
            routing: Some(crate::cloud::Routing {
                alias: Some("lb.example.com.".into()),
                evaluate_target_health: true,
                alias_zone: Some("ZLB".into()),
                ..Default::default()
            }),
            ..cname("api.example.com.", "")
        };
        f.put_record("example.com.", alias.clone());
        let want = cname("api.example.com.", "api-use1.example.com.");
        let pairs = swaps(std::slice::from_ref(&want), &[Some(alias.clone())]);
        assert_eq!(pairs, [(Some(alias.clone()), want.clone())]);
        let changes = DnsChange::swap(Some(&alias), &want);
        assert_eq!(
            changes,
            [
                DnsChange::Delete(alias.clone()),
                DnsChange::Create(want.clone())
            ]
        );
        // A stale read of the alias (another target) is refused whole.
        let stale = DnsRecord {
            routing: Some(crate::cloud::Routing {
                alias: Some("old-lb.example.com.".into()),
                ..alias.routing.clone().unwrap()
            }),
            ..alias.clone()
        };
        let dns = f.clouds().dns;
        let refused = dns
            .apply_changes(&z, &DnsChange::swap(Some(&stale), &want), "stale")
            .await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(f.state().records[&z.id], [alias]);
        dns.apply_changes(&z, &changes, "run")
            .await
            .expect("swapped");
        assert_eq!(f.state().records[&z.id], [want]);
    }

    fn upsert(i: usize) -> DnsChange {
        DnsChange::Upsert(DnsRecord::simple(
            format!("r{i}.example.com."),
            "CNAME",
            Some(60),
            vec!["x.example.com.".into()],
        ))
    }

    #[test]
    fn upserts_split_into_batches_of_at_most_1000_counted_records() {
        let sizes = |n: usize| -> Vec<usize> {
            let changes: Vec<DnsChange> = (0..n).map(upsert).collect();
            batches(&changes).map(<[DnsChange]>::len).collect()
        };
        assert_eq!(sizes(2), [2]);
        assert_eq!(sizes(500), [500]);
        assert_eq!(sizes(501), [500, 1]);
        assert_eq!(sizes(1001), [500, 500, 1]);
        assert!(sizes(0).is_empty());
    }
}
