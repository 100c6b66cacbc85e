//! `switch-dns`: move a plan's records in one hosted zone to the target
//! region in one atomic change batch (`verify-dns` then waits for INSYNC and
//! reads them back).
//!
//! One batch per zone means clients never see half a switch (the API record
//! moved, the database record not). Route 53 counts an UPSERT twice toward its
//! 1,000-record batch limit, so batches are split at 500 changes.
//!
//! In `upsert` and `weighted` mode each record change is a compare-and-swap:
//! the batch DELETEs exactly the set the step read (values, TTL, weight) and
//! CREATEs the new one. A batch is all-or-nothing, so a writer whose read is
//! stale (a process that slept through its lease, then woke) is refused by
//! Route 53 instead of overwriting a newer run's decision. An alias record
//! is swapped the same way (its DELETE names the alias target as read). The
//! pair counts two records, like an UPSERT, and is never split across
//! batches.
//!
//! A refusal is judged from the records read again ([`judge_refusal`]):
//! a record that moved elsewhere is another run's doing and fails the step;
//! records that all already are as wanted are this run's own change, whose
//! answer was lost on the way back (the adapter sent the batch again, and
//! the resend no longer matched what its first send had replaced), and the
//! switch is done.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::dns_batch::{batches, swap_pair};
use super::records::{
    SwitchDnsOutput, current, current_in, desired, matches, show, zone_finding, zone_now,
};
use super::{Action, Cost, Cx, Finding, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::{CloudError, Dns, DnsChange, DnsRecord, ErrorKind, HostedZone};
use crate::plan::spec::{DnsSpec, SwitchMode};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Switch every record of the plan in one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchDns {
    /// Zone name.
    pub zone: String,
    /// Target region.
    pub region: String,
    /// The records switched (the plan's entries).
    #[serde(serialize_with = "super::records::record_names")]
    pub records: Vec<DnsSpec>,
}

impl SwitchDns {
    /// The names of the records switched.
    pub fn names(&self) -> Vec<&str> {
        self.records.iter().map(|d| d.name.as_str()).collect()
    }
}

/// Part of the recovery: traffic moves here.
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &[
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "route53:ChangeResourceRecordSets",
        ],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// One switch per hosted zone: every record in a failover, the records that
/// follow the restored database in a restore, none in a reprotection.
pub fn compile(b: &mut Builder<'_>) {
    let keep = |d: &DnsSpec| match b.mode {
        _ if !d.switch.needs_route53_api() => false,
        m if m.fails_over() => true,
        RunMode::Restore { database, .. } => d.follows.as_deref() == Some(database.as_str()),
        RunMode::Failover { .. } | RunMode::Reprotect | RunMode::Drill { .. } => false,
    };
    let mut zones: BTreeMap<String, Vec<DnsSpec>> = BTreeMap::new();
    for d in b.plan.spec.dns.iter().filter(|d| keep(d)) {
        zones
            .entry(d.zone.to_ascii_lowercase())
            .or_default()
            .push(d.clone());
    }
    let target = b.target.to_string();
    for (zone, records) in zones {
        let changes: Vec<String> = records
            .iter()
            .map(|d| match (&d.follows, d.switch) {
                (Some(db), _) => format!("{} → endpoint of {db} in {target}", d.name),
                (None, SwitchMode::Upsert | SwitchMode::HealthCheck) => {
                    format!("{} → {}", d.name, d.targets[&target])
                }
                (None, SwitchMode::Weighted) => {
                    format!("{} weights: {target}=100, others 0", d.name)
                }
            })
            .collect();
        let resources = records.iter().map(|d| d.id.clone()).collect();
        let description = format!("one change batch in {zone}: {}", changes.join("; "));
        b.add(
            StepKind::SwitchDns(SwitchDns {
                zone: zone.clone(),
                region: target.clone(),
                records,
            }),
            Some(zone),
            Phase::of(crate::plan::spec::ResourceKind::Dns),
            resources,
            description,
        );
    }
}

/// The compare-and-swap changes that bring the records `cur` (as read, in
/// the order of `want`) to `want`: nothing for a record already right.
pub(super) fn swaps(want: &[DnsRecord], cur: &[Option<DnsRecord>]) -> Vec<DnsChange> {
    want.iter()
        .zip(cur)
        .filter(|(w, c)| !matches(c, w))
        .flat_map(|(w, c)| DnsChange::swap(c.as_ref(), w))
        .collect()
}

/// What the change batches of one switch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Submitted {
    /// The changes Route 53 answered with.
    pub change_ids: Vec<String>,
    /// Whether every batch was INSYNC in its answer (false when an
    /// answer was lost: its change cannot be polled).
    pub in_sync: bool,
    /// Batches whose answer was lost: sent again, refused because the
    /// first send had taken effect, and read back as wanted.
    pub answers_lost: usize,
}

/// Submits the swaps in as few batches as the limit allows, each after a
/// check of the run's lease. A batch refused because a record changed
/// since it was read fails the step saying so; one refused because its own
/// first send took effect (the answer was lost, the adapter sent it again)
/// reads back as wanted and counts as done ([`after_refusal`]).
pub(super) async fn submit_swaps(
    cx: &Cx<'_>,
    z: &HostedZone,
    changes: &[DnsChange],
) -> Result<Submitted, StepFailure> {
    let comment = format!(
        "drctl run {}: {} to {}",
        cx.run_id,
        cx.plan.name(),
        cx.target
    );
    let mut out = Submitted {
        in_sync: true,
        ..Submitted::default()
    };
    if let Some(queues) = cx.zone_batches.as_ref().filter(|_| !changes.is_empty()) {
        cx.fenced(
            &format!("route53:ChangeResourceRecordSets in {}", z.name),
            "global",
        )
        .await?;
        let group = super::dns_batch::Group {
            plan: cx.plan.name().to_string(),
            changes: changes.to_vec(),
        };
        match queues
            .submit(cx.clouds.dns.as_ref(), z, group, &comment)
            .await
        {
            Ok(carried) => {
                if carried.plans.len() > 1 {
                    tracing::info!(
                        zone = %z.name,
                        change = %carried.change_id,
                        "one batch for {} plans: {}",
                        carried.plans.len(),
                        carried.plans.join(", ")
                    );
                }
                out.change_ids.push(carried.change_id);
                out.in_sync = carried.in_sync;
            }
            Err(e) => {
                after_refusal(cx.clouds.dns.as_ref(), z, changes, e).await?;
                out.answers_lost += 1;
                out.in_sync = false;
            }
        }
        return Ok(out);
    }
    for batch in batches(changes) {
        cx.fenced(
            &format!("route53:ChangeResourceRecordSets in {}", z.name),
            "global",
        )
        .await?;
        match cx.clouds.dns.apply_changes(z, batch, &comment).await {
            Ok(info) => {
                out.in_sync &= info.in_sync;
                out.change_ids.push(info.id);
            }
            Err(e) => {
                after_refusal(cx.clouds.dns.as_ref(), z, batch, e).await?;
                out.answers_lost += 1;
                out.in_sync = false;
            }
        }
    }
    Ok(out)
}

/// The record sets a batch swaps: each wanted set (a CREATE) with the set
/// as it was read (the DELETE before it), or `None` for a set that was
/// absent.
pub(super) fn swapped(batch: &[DnsChange]) -> Vec<(DnsRecord, Option<DnsRecord>)> {
    let mut out = Vec::new();
    for (i, c) in batch.iter().enumerate() {
        match c {
            DnsChange::Create(w) if i > 0 && swap_pair(&batch[i - 1..]) => {
                if let DnsChange::Delete(d) = &batch[i - 1] {
                    out.push((w.clone(), Some(d.clone())));
                }
            }
            DnsChange::Create(w) => out.push((w.clone(), None)),
            _ => {}
        }
    }
    out
}

/// What a refused swap batch was, judged from the sets it swaps (wanted,
/// as read) and the same sets read again after the refusal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Refusal {
    /// Every set already is as wanted: the batch's change is in effect.
    /// Route 53 applies a batch whole, so this is this run's own earlier
    /// send, whose answer was lost (the adapter sent it again, and the
    /// resend's DELETE no longer matched).
    AlreadyAsWanted,
    /// The set at this index is neither as read nor as wanted: another
    /// writer moved it.
    Changed(usize),
    /// Nothing moved since the read: the provider refused for a reason of
    /// its own (its error stands).
    Provider,
}

/// Judges a refusal (pure: the reads are the caller's).
pub(super) fn judge_refusal(
    swapped: &[(DnsRecord, Option<DnsRecord>)],
    now: &[Option<DnsRecord>],
) -> Refusal {
    if !swapped.is_empty()
        && swapped.len() == now.len()
        && swapped.iter().zip(now).all(|((w, _), n)| matches(n, w))
    {
        return Refusal::AlreadyAsWanted;
    }
    match swapped.iter().zip(now).position(|((_, was), n)| was != n) {
        Some(i) => Refusal::Changed(i),
        None => Refusal::Provider,
    }
}

/// After Route 53 refused `batch` with `e` (or no answer came, every try):
/// reads the swapped sets again (only now that the batch failed) and
/// judges ([`judge_refusal`]). `Ok` when they already are as wanted (this
/// run's own send whose answer was lost: said in the log, counted in the
/// step's output); otherwise the step's failure: another run switched a
/// set (a refusal), or the provider's own error.
pub(super) async fn after_refusal(
    dns: &dyn Dns,
    z: &HostedZone,
    batch: &[DnsChange],
    e: CloudError,
) -> Result<(), StepFailure> {
    // Not sent at all: the lease is lost, whatever the records say now
    // (the taker may have switched them already).
    if e.kind == ErrorKind::Fenced {
        return Err(e.into());
    }
    let sets = swapped(batch);
    let wants: Vec<DnsRecord> = sets.iter().map(|(w, _)| w.clone()).collect();
    let Ok(now) = current_in(dns, z, &wants).await else {
        return Err(e.into());
    };
    match judge_refusal(&sets, &now) {
        Refusal::AlreadyAsWanted => {
            tracing::warn!(
                zone = %z.name,
                "a change batch of {} record set(s) failed ({}), but every set already is as wanted: this run's own send took effect and its answer was lost (a resend is refused); the switch is done",
                sets.len(),
                e.message
            );
            Ok(())
        }
        // Without a refusal (no answer, a busy zone), nothing says that
        // the batch was judged against a newer value.
        Refusal::Changed(_) | Refusal::Provider if e.kind != ErrorKind::Client => Err(e.into()),
        Refusal::Changed(i) => Err(StepFailure::state(
            format!(
                "record {} {} changed since it was read (now {}): another run switched it; re-read with drctl status",
                sets[i].0.name,
                sets[i].0.rtype,
                show(&now[i])
            ),
            "nothing was changed by this batch (Route 53 applies a batch whole or not at all); check who holds the plan (drctl lock status) before running again",
            &sets[i].0.name,
            "global",
        )),
        Refusal::Provider => Err(e.into()),
    }
}

#[async_trait]
impl Action for SwitchDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        vec![zone_finding(cx, &self.zone).await]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let z = zone_now(cx, &self.zone).await?;
        let want = desired(cx, &self.records).await?;
        let cur = current(cx, &z, &want).await?;
        Ok(want
            .iter()
            .zip(&cur)
            .map(|(w, c)| Planned {
                call: "route53:ChangeResourceRecordSets DELETE+CREATE (compare-and-swap, one batch for the zone)".into(),
                resource: format!(
                    "{} {}{}",
                    w.name,
                    w.rtype,
                    w.set_identifier
                        .as_ref()
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
        let z = zone_now(cx, &self.zone).await?;
        let want = desired(cx, &self.records).await?;
        let cur = current(cx, &z, &want).await?;
        let changes = swaps(&want, &cur);
        let Submitted {
            change_ids,
            in_sync,
            answers_lost,
        } = submit_swaps(cx, &z, &changes).await?;
        if changes.is_empty() {
            tracing::info!(zone = %self.zone, "records already point at {}", cx.target);
        }
        let changed = want
            .iter()
            .zip(&cur)
            .filter(|(w, c)| !matches(c, w))
            .count();
        SwitchDnsOutput {
            zone: z.name,
            zone_id: z.id,
            change_ids,
            in_sync,
            answers_lost,
            changed,
            before: cur,
            after: want,
            submitted_at: Utc::now(),
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::super::KindName;
    use super::*;
    use crate::cloud::{ChangeInfo, HealthCheck};
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
        let name = format!("api{i}.example.com.");
        DnsChange::swap(Some(&cname(&name, "home.")), &cname(&name, "target."))
    }

    #[test]
    fn a_refusal_is_judged_from_the_records_read_again() {
        let batch = swap_of(0);
        let sets = swapped(&batch);
        assert_eq!(
            sets,
            [(
                cname("api0.example.com.", "target."),
                Some(cname("api0.example.com.", "home."))
            )]
        );
        // As wanted: the batch's own change is in effect.
        let wanted = Some(cname("api0.example.com.", "TARGET"));
        assert_eq!(judge_refusal(&sets, &[wanted]), Refusal::AlreadyAsWanted);
        // Elsewhere: another writer.
        let elsewhere = Some(cname("api0.example.com.", "elsewhere."));
        assert_eq!(judge_refusal(&sets, &[elsewhere]), Refusal::Changed(0));
        // Gone since the read: another writer too.
        assert_eq!(judge_refusal(&sets, &[None]), Refusal::Changed(0));
        // Of two sets, the second moved elsewhere.
        let two = [swap_of(0), swap_of(1)].concat();
        let moved = [
            Some(cname("api0.example.com.", "home.")),
            Some(cname("api1.example.com.", "elsewhere.")),
        ];
        assert_eq!(judge_refusal(&swapped(&two), &moved), Refusal::Changed(1));
        // As read: the provider's own reason.
        let read = Some(cname("api0.example.com.", "home."));
        assert_eq!(judge_refusal(&sets, &[read]), Refusal::Provider);
        // A lone CREATE of a set that was absent, now present as wanted.
        let create = [DnsChange::Create(cname("new.example.com.", "x."))];
        assert_eq!(
            judge_refusal(&swapped(&create), &[Some(cname("new.example.com.", "x."))]),
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
        let batch = swap_of(0);
        let e = dns
            .apply_changes(&z, &batch, "run")
            .await
            .expect_err("the resend is refused");
        assert_eq!(e.kind, ErrorKind::Client, "{e}");
        after_refusal(&dns, &z, &batch, e)
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
        after_refusal(&dns, &z, &batch, dropped())
            .await
            .expect("in effect");
        // A batch that never took effect keeps its own error, and says
        // nothing of another run.
        let e = after_refusal(&dns, &z, &swap_of(1), dropped())
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
        let q = super::super::dns_batch::Coalescer::new(
            model.route53.clone(),
            "20261124T100000Z-p-0001",
            "us-east-1",
        );
        let group = |i: usize| super::super::dns_batch::Group {
            plan: format!("p{i}"),
            changes: swap_of(i),
        };
        let (a, b, c) = tokio::join!(
            q.submit(&dns, &z, group(0), "p0"),
            q.submit(&dns, &z, group(1), "p1"),
            q.submit(&dns, &z, group(2), "p2"),
        );
        assert_eq!(a.expect("p0's answer came").plans, ["p0"]);
        for (i, r) in [(1, b), (2, c)] {
            let e = r.expect_err("the resend of a lost batch is refused");
            after_refusal(&dns, &z, &swap_of(i), e)
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
        let changes = swaps(std::slice::from_ref(&want), &[Some(alias.clone())]);
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
