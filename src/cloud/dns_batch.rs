//! Route 53 change batches for many plans at once: the records that
//! several plans switch in one hosted zone are sent as few
//! `ChangeResourceRecordSets` batches as Route 53's limits allow, instead
//! of one per plan.
//!
//! # Why
//!
//! Route 53 allows one change per hosted zone in flight (a second gets
//! `PriorRequestNotComplete`) and a change takes up to a minute to reach
//! every name server. Fifty plans that switch records in three zones one
//! batch each wait on each other in each zone, a minute apiece; combined,
//! they go out in a handful of batches. A batch holds at most 1,000
//! `ResourceRecord` elements and 32,000 characters of values, and an UPSERT
//! counts twice toward both ([`crate::cloud::model::Route53Batches`]).
//!
//! What stays whole: one plan's changes to one record set (a
//! compare-and-swap is a DELETE of what was read and a CREATE of what is
//! wanted, and both must be in the same batch to be atomic). Groups are
//! packed in the order given (the caller's tier order), first fit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cloud::model::Route53Batches;
use crate::cloud::wire::WireFence;
use crate::cloud::{CloudError, DnsChange, ErrorKind, HostedZone};

/// Most UPSERTs in one Route 53 change batch (each counts twice toward 1,000).
pub const MAX_UPSERTS_PER_BATCH: usize = 500;

/// Most records one Route 53 change batch may count.
pub const MAX_RECORDS_PER_BATCH: usize = 2 * MAX_UPSERTS_PER_BATCH;

/// Splits changes into Route 53 change batches: as few as the 1,000-record
/// limit allows (one, for any plan of fewer than 500 records), never
/// between a DELETE and the CREATE of the same set that follows it (a
/// compare-and-swap split in two would no longer be one).
pub fn batches(changes: &[DnsChange]) -> impl Iterator<Item = &[DnsChange]> {
    let mut cuts = vec![0];
    let (mut counted, mut i) = (0, 0);
    while i < changes.len() {
        let unit = if swap_pair(&changes[i..]) { 2 } else { 1 };
        let size: usize = changes[i..i + unit]
            .iter()
            .map(DnsChange::counted_records)
            .sum();
        if counted > 0 && counted + size > MAX_RECORDS_PER_BATCH {
            cuts.push(i);
            counted = 0;
        }
        counted += size;
        i += unit;
    }
    cuts.push(changes.len());
    let ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    ranges
        .into_iter()
        .filter(|(a, b)| b > a)
        .map(move |(a, b)| &changes[a..b])
}

/// Whether `changes` starts with a DELETE and the CREATE of the same set.
pub fn swap_pair(changes: &[DnsChange]) -> bool {
    match changes {
        [DnsChange::Delete(d), DnsChange::Create(c), ..] => {
            d.name
                .trim_end_matches('.')
                .eq_ignore_ascii_case(c.name.trim_end_matches('.'))
                && d.rtype.eq_ignore_ascii_case(&c.rtype)
                && d.set_identifier == c.set_identifier
        }
        _ => false,
    }
}

/// One plan's changes to one record set: never split across batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The plan.
    pub plan: String,
    /// Its changes, in order.
    pub changes: Vec<DnsChange>,
}

/// One `ChangeResourceRecordSets` request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The groups it carries, in order.
    pub groups: Vec<Group>,
    /// `ResourceRecord` elements, UPSERTs counted twice.
    pub records: usize,
    /// Characters of values, UPSERTs counted twice.
    pub chars: usize,
}

impl Batch {
    /// Every change, in order.
    pub fn changes(&self) -> Vec<DnsChange> {
        self.groups.iter().flat_map(|g| g.changes.clone()).collect()
    }

    /// The plans it carries, each once, in order.
    pub fn plans(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in &self.groups {
            if !out.contains(&g.plan) {
                out.push(g.plan.clone());
            }
        }
        out
    }
}

/// A group that no batch can hold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "plan {plan}'s change to one record set counts {records} records and {chars} characters; a Route 53 batch holds at most {max_records} and {max_chars}"
)]
pub struct TooBig {
    /// The plan.
    pub plan: String,
    /// Its weighted records.
    pub records: usize,
    /// Its weighted characters.
    pub chars: usize,
    /// The record limit.
    pub max_records: usize,
    /// The character limit.
    pub max_chars: usize,
}

/// What one change counts toward a batch's limits: (records, characters).
pub fn weight(c: &DnsChange, limits: &Route53Batches) -> (usize, usize) {
    let r = c.record();
    let times = match c {
        DnsChange::Upsert(_) => limits.upsert_weight.max(1),
        _ => 1,
    };
    // An alias or a record without values is one element.
    let elements = r.values.len().max(1);
    let chars: usize = r.values.iter().map(String::len).sum();
    (elements * times, chars * times)
}

/// Cuts `groups` into batches within `limits`, first fit in order.
pub fn cut(groups: Vec<Group>, limits: &Route53Batches) -> Result<Vec<Batch>, TooBig> {
    let mut out: Vec<Batch> = Vec::new();
    for g in groups {
        let (records, chars) = g
            .changes
            .iter()
            .map(|c| weight(c, limits))
            .fold((0, 0), |a, w| (a.0 + w.0, a.1 + w.1));
        if records > limits.max_records_per_batch || chars > limits.max_chars_per_batch {
            return Err(TooBig {
                plan: g.plan,
                records,
                chars,
                max_records: limits.max_records_per_batch,
                max_chars: limits.max_chars_per_batch,
            });
        }
        let fits = |b: &Batch| {
            b.records + records <= limits.max_records_per_batch
                && b.chars + chars <= limits.max_chars_per_batch
        };
        match out.iter_mut().find(|b| fits(b)) {
            Some(b) => {
                b.records += records;
                b.chars += chars;
                b.groups.push(g);
            }
            None => out.push(Batch {
                groups: vec![g],
                records,
                chars,
            }),
        }
    }
    Ok(out)
}

/// What carried a plan's changes to Route 53.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The change's id.
    pub change_id: String,
    /// Whether Route 53 answered it INSYNC already.
    pub in_sync: bool,
    /// The plans whose changes went in the same batch (this one included).
    pub plans: Vec<String>,
}

/// A group waiting for its zone's turn.
struct Pending {
    group: Group,
    comment: String,
    /// The lease its plan's step runs under (the submitter's wire fence):
    /// asked again right before each send of a batch that carries it.
    fence: Option<WireFence>,
    done: oneshot::Sender<Result<Carried, CloudError>>,
}

/// One zone's queue: groups waiting, and whose turn it is to send.
#[derive(Default)]
struct ZoneQueue {
    pending: Mutex<Vec<Pending>>,
    turn: tokio::sync::Mutex<()>,
}

/// The waits on a zone still busy with an earlier change
/// (`PriorRequestNotComplete`): the first, doubled up to the longest;
/// the default of a run's `[pace]` ([`Coalescer::with_busy_waits`]).
pub const BUSY_ZONE_WAITS: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(8));
/// Most tries of one batch while the zone stays busy (about five minutes).
const PRIOR_TRIES: u32 = 40;

/// The Route 53 changes of one run, per hosted zone: every plan's switch
/// of a zone joins its queue; one change per zone is in flight at a time,
/// and what queued meanwhile goes out together, as few batches as the
/// limits allow ([`cut`]).
///
/// Whoever holds the zone's turn sends everything queued (its own group
/// among it) and hands every group its result; a group that finds its
/// result ready when its turn comes returns it. A zone still processing
/// an earlier change (`PriorRequestNotComplete`, from this run or another
/// client) is waited on and tried again, with whatever joined meanwhile.
/// A batch that Route 53 refuses whole (a record one plan swaps changed
/// since it was read) is sent again one group at a time, so one plan's
/// conflict fails that plan alone.
pub struct Coalescer {
    limits: Route53Batches,
    /// Run id and target, for the comment of a batch of several plans.
    run: (String, String),
    zones: Mutex<BTreeMap<String, Arc<ZoneQueue>>>,
    /// Waits on a busy zone: the first, doubled up to the longest.
    busy: (Duration, Duration),
}

impl Coalescer {
    /// The queues of run `run_id` failing over to `target`.
    pub fn new(limits: Route53Batches, run_id: &str, target: &str) -> Self {
        Self {
            limits,
            run: (run_id.to_string(), target.to_string()),
            zones: Mutex::default(),
            busy: BUSY_ZONE_WAITS,
        }
    }

    /// The same queues waiting `first`, doubled up to `longest`, on a
    /// zone still busy (the run's `[pace]`).
    pub fn with_busy_waits(self, (first, longest): (Duration, Duration)) -> Self {
        Self {
            busy: (first, longest.max(first)),
            ..self
        }
    }

    fn queue(&self, zone: &HostedZone) -> Arc<ZoneQueue> {
        let mut z = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        z.entry(zone.id.clone()).or_default().clone()
    }

    /// Sends `group` to `zone` with the run's other plans' changes there;
    /// returns the change that carried it. `comment`: the change's comment
    /// when it goes alone.
    pub async fn submit(
        &self,
        dns: &dyn crate::cloud::Dns,
        zone: &HostedZone,
        group: Group,
        comment: &str,
    ) -> Result<Carried, CloudError> {
        let q = self.queue(zone);
        let (tx, mut rx) = oneshot::channel();
        q.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pending {
                group,
                comment: comment.to_string(),
                fence: WireFence::current(),
                done: tx,
            });
        loop {
            let _turn = q.turn.lock().await;
            match rx.try_recv() {
                Ok(r) => return r,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(lost(zone));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            self.send_queued(dns, zone, &q).await;
        }
    }

    /// Takes what is queued for the zone (a group whose step is gone is
    /// dropped, never sent).
    fn take(q: &ZoneQueue) -> Vec<Pending> {
        let mut p = q.pending.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *p)
            .into_iter()
            .filter(|x| !x.done.is_closed())
            .collect()
    }

    /// Answers every group whose plan's lease is no longer certainly ours
    /// with its refusal, and keeps the others: asked right before each send
    /// and each resend, so a batch never carries a stale plan's changes.
    fn drop_fenced(zone: &HostedZone, waiting: Vec<Pending>) -> Vec<Pending> {
        let mut kept = Vec::with_capacity(waiting.len());
        for p in waiting {
            match p.fence.as_ref().map(WireFence::check) {
                Some(Err(f)) => {
                    let _ = p.done.send(Err(fenced(zone, &p.group.plan, f)));
                }
                _ => kept.push(p),
            }
        }
        kept
    }

    /// The fence of a batch: every plan it carries must still hold its lease
    /// at the moment of each transmission.
    fn fence_of(these: &[Pending]) -> WireFence {
        WireFence::all(these.iter().filter_map(|p| p.fence.as_ref()))
    }

    /// Sends everything queued for the zone, batch after batch, taking in
    /// what joins while the zone is busy.
    async fn send_queued(&self, dns: &dyn crate::cloud::Dns, zone: &HostedZone, q: &ZoneQueue) {
        let mut waiting = Self::take(q);
        let mut pause = self.busy.0;
        let mut tries = 0;
        loop {
            waiting = Self::drop_fenced(zone, waiting);
            if waiting.is_empty() {
                break;
            }
            let batches = match cut(
                waiting.iter().map(|p| p.group.clone()).collect(),
                &self.limits,
            ) {
                Ok(b) => b,
                Err(too_big) => {
                    // One plan's switch is bigger than a batch: each of its
                    // record sets goes in batches of its own, as before.
                    let (big, rest): (Vec<Pending>, Vec<Pending>) = waiting
                        .into_iter()
                        .partition(|p| p.group.plan == too_big.plan);
                    self.send_each_alone(dns, zone, big).await;
                    waiting = rest;
                    continue;
                }
            };
            let Some(first) = batches.into_iter().next() else {
                break;
            };
            let (mut these, others): (Vec<Pending>, Vec<Pending>) = waiting
                .into_iter()
                .partition(|p| first.groups.contains(&p.group));
            let comment = self.comment_of(&these, &first);
            let sent = Self::fence_of(&these)
                .guard(dns.apply_changes(zone, &first.changes(), &comment))
                .await;
            match sent {
                Ok(info) => {
                    let carried = Carried {
                        change_id: info.id,
                        in_sync: info.in_sync,
                        plans: first.plans(),
                    };
                    answer_all(these, &Ok(carried));
                    pause = self.busy.0;
                    tries = 0;
                    waiting = others;
                }
                Err(e) if prior_not_complete(&e) && tries < PRIOR_TRIES => {
                    tries += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.busy.1);
                    these.extend(others);
                    waiting = these;
                }
                // One of its plans lost its lease between the check and the
                // send: nothing was sent; the next round drops that plan
                // (each such round drops at least one) and sends the rest.
                Err(e) if e.kind == ErrorKind::Fenced => {
                    these.extend(others);
                    waiting = these;
                }
                Err(e) if e.kind == ErrorKind::Client && these.len() > 1 => {
                    self.send_each_alone(dns, zone, these).await;
                    waiting = others;
                }
                Err(e) => {
                    answer_all(these, &Err(e));
                    waiting = others;
                }
            }
            waiting.extend(Self::take(q));
        }
    }

    /// The comment of a change carrying `these` in `batch`: a lone group's
    /// own, else one naming the run and how many plans it switches.
    fn comment_of(&self, these: &[Pending], batch: &Batch) -> String {
        match these {
            [one] => one.comment.clone(),
            _ => format!(
                "drctl run {}: {} plans to {}",
                self.run.0,
                batch.plans().len(),
                self.run.1
            ),
        }
    }

    /// Sends each of `these` alone, one after the other, and answers each
    /// with its own result (one group's failure stays its own).
    async fn send_each_alone(
        &self,
        dns: &dyn crate::cloud::Dns,
        zone: &HostedZone,
        these: Vec<Pending>,
    ) {
        for p in these {
            let r = self.send_alone(dns, zone, &p).await;
            let _ = p.done.send(r);
        }
    }

    /// Sends one group alone (in as many batches as its size needs, each
    /// a whole record set), waiting out a busy zone; the last change carries it.
    async fn send_alone(
        &self,
        dns: &dyn crate::cloud::Dns,
        zone: &HostedZone,
        p: &Pending,
    ) -> Result<Carried, CloudError> {
        let mut last = None;
        let fence = Self::fence_of(std::slice::from_ref(p));
        for chunk in batches(&p.group.changes) {
            let mut pause = self.busy.0;
            let mut tries = 0;
            loop {
                fence.check().map_err(|f| fenced(zone, &p.group.plan, f))?;
                let sent = fence
                    .clone()
                    .guard(dns.apply_changes(zone, chunk, &p.comment))
                    .await;
                match sent {
                    Ok(info) => {
                        last = Some(Carried {
                            change_id: info.id,
                            in_sync: info.in_sync,
                            plans: vec![p.group.plan.clone()],
                        });
                        break;
                    }
                    Err(e) if prior_not_complete(&e) && tries < PRIOR_TRIES => {
                        tries += 1;
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(self.busy.1);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        last.ok_or_else(|| lost(zone))
    }
}

/// Answers every group of a batch with the batch's result.
fn answer_all(these: Vec<Pending>, r: &Result<Carried, CloudError>) {
    for p in these {
        let _ = p.done.send(r.clone());
    }
}

/// Route 53 is still processing an earlier change to the zone.
fn prior_not_complete(e: &CloudError) -> bool {
    e.code.as_deref() == Some("PriorRequestNotComplete")
}

/// A queued group dropped from its batch because its plan's lease is no
/// longer certainly ours: nothing of it was sent.
fn fenced(zone: &HostedZone, plan: &str, f: crate::cloud::wire::Fenced) -> CloudError {
    CloudError::new(
        "route53",
        "ChangeResourceRecordSets",
        format!("{} (plan {plan})", zone.name),
        "global",
        ErrorKind::Fenced,
        f.detail,
    )
}

/// A queued group whose answer never came (its sender was dropped).
fn lost(zone: &HostedZone) -> CloudError {
    CloudError::new(
        "route53",
        "ChangeResourceRecordSets",
        &zone.name,
        "global",
        ErrorKind::Connection,
        "the batch carrying this plan's changes was abandoned before Route 53 answered; the step reads the records again when it runs again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::DnsRecord;

    fn limits() -> Route53Batches {
        Route53Batches {
            max_records_per_batch: 1000,
            max_chars_per_batch: 32_000,
            upsert_weight: 2,
            one_change_in_flight_per_zone: true,
            source: "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html"
                .into(),
        }
    }

    fn record(name: &str, value: &str) -> DnsRecord {
        DnsRecord::simple(name.to_string(), "CNAME", Some(60), vec![value.to_string()])
    }

    fn swap(plan: &str, i: usize) -> Group {
        let name = format!("api{i}.example.com.");
        Group {
            plan: plan.into(),
            changes: DnsChange::swap(
                Some(&record(&name, "api-usw2.example.com.")),
                &record(&name, "api-use1.example.com."),
            ),
        }
    }

    #[test]
    fn fifty_plans_in_one_zone_share_one_batch() {
        let groups: Vec<Group> = (0..50).map(|i| swap(&format!("p{i}"), i)).collect();
        let batches = cut(groups, &limits()).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records, 100);
        assert_eq!(batches[0].plans().len(), 50);
    }

    #[test]
    fn upserts_count_twice_and_batches_are_cut_at_the_limit() {
        let groups: Vec<Group> = (0..600)
            .map(|i| Group {
                plan: format!("p{i}"),
                changes: vec![DnsChange::Upsert(record(
                    &format!("n{i}.example.com."),
                    "x.example.com.",
                ))],
            })
            .collect();
        let batches = cut(groups, &limits()).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.records).collect::<Vec<_>>(),
            [1000, 200]
        );
        assert_eq!(batches[0].groups.len(), 500);
    }

    #[test]
    fn characters_cut_too() {
        let long = "a".repeat(250);
        let groups: Vec<Group> = (0..200)
            .map(|i| Group {
                plan: format!("p{i}"),
                changes: vec![DnsChange::Create(record(
                    &format!("n{i}.example.com."),
                    &long,
                ))],
            })
            .collect();
        let batches = cut(groups, &limits()).unwrap();
        assert_eq!(batches.len(), 2, "200 × 250 characters: 32,000 then 18,000");
        assert_eq!(batches[0].chars, 32_000);
    }

    #[test]
    fn a_swap_is_never_split_and_a_group_too_big_is_named() {
        let batches = cut(
            (0..499)
                .map(|i| swap("p", i))
                .chain([swap("q", 999), swap("q", 1000)])
                .collect(),
            &limits(),
        )
        .unwrap();
        for b in &batches {
            for g in &b.groups {
                assert_eq!(g.changes.len(), 2, "DELETE and CREATE together");
            }
        }
        assert_eq!(batches.len(), 2);
        let huge = Group {
            plan: "big".into(),
            changes: (0..1001)
                .map(|i| DnsChange::Create(record(&format!("n{i}."), "v.")))
                .collect(),
        };
        let e = cut(vec![huge], &limits()).unwrap_err();
        assert_eq!(e.plan, "big");
        assert!(e.to_string().contains("1001 records"), "{e}");
    }

    /// A timed world with one zone and `n` records, each at its home value.
    fn zone_world(n: usize) -> (crate::cloud::fake::FakeCloud, HostedZone) {
        let f = crate::cloud::fake::FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 9);
        let z = f.add_zone("example.com.");
        for i in 0..n {
            let name = format!("api{i}.example.com.");
            f.put_record("example.com.", record(&name, "api-usw2.example.com."));
        }
        (f, z)
    }

    fn coalescer() -> Coalescer {
        Coalescer::new(limits(), "20261124T100000Z-p-0001", "us-east-1")
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_plans_ready_at_once_go_in_two_batches_and_each_knows_its_change() {
        let (f, z) = zone_world(50);
        let clouds = f.clouds();
        let q = coalescer();
        let results = futures::future::join_all((0..50).map(|i| {
            let g = swap(&format!("p{i}"), i);
            q.submit(clouds.dns.as_ref(), &z, g, "alone")
        }))
        .await;
        let carried: Vec<Carried> = results.into_iter().map(Result::unwrap).collect();
        // The first plan's change goes as soon as it asks; the other 49
        // queue behind it and go together once the zone is free.
        let ids: std::collections::BTreeSet<&String> =
            carried.iter().map(|c| &c.change_id).collect();
        assert_eq!(ids.len(), 2, "{carried:?}");
        assert_eq!(carried[0].plans, ["p0"]);
        assert_eq!(carried[1].plans.len(), 49);
        assert!(carried[1].plans.contains(&"p49".to_string()));
        let writes = f.state().writes.clone();
        assert_eq!(writes.len(), 2, "{writes:?}");
        // Every record switched.
        let recs = &f.state().records[&z.id];
        assert!(
            recs.iter().all(|r| r.values == ["api-use1.example.com."]),
            "{recs:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_plan_fenced_while_queued_is_dropped_from_the_batch_and_the_rest_go() {
        use crate::cloud::wire::WireFence;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (f, z) = zone_world(3);
        let clouds = f.clouds();
        let q = coalescer();
        let lost = Arc::new(AtomicBool::new(false));
        let fence_of = |plan: &'static str| {
            let lost = lost.clone();
            WireFence::new(move || {
                if plan == "p1" && lost.load(Ordering::SeqCst) {
                    Err("the lock of plan p1 was taken over".to_string())
                } else {
                    Ok(())
                }
            })
        };
        // p0's change holds the zone; p1 and p2 queue behind it, and p1's
        // lease is lost while it waits.
        let first = fence_of("p0").guard(q.submit(clouds.dns.as_ref(), &z, swap("p0", 0), "a"));
        let p1 = fence_of("p1").guard(q.submit(clouds.dns.as_ref(), &z, swap("p1", 1), "b"));
        let p2 = fence_of("p2").guard(q.submit(clouds.dns.as_ref(), &z, swap("p2", 2), "c"));
        let lose = async {
            tokio::task::yield_now().await;
            lost.store(true, Ordering::SeqCst);
        };
        let (a, b, c, ()) = tokio::join!(first, p1, p2, lose);
        assert!(a.is_ok(), "{a:?}");
        assert_eq!(b.unwrap_err().kind, ErrorKind::Fenced);
        assert_eq!(c.unwrap().plans, ["p2"]);
        let recs = &f.state().records[&z.id];
        let value = |n: &str| {
            recs.iter()
                .find(|r| r.name == n)
                .map(|r| r.values.clone())
                .unwrap_or_default()
        };
        assert_eq!(value("api1.example.com."), ["api-usw2.example.com."]);
        assert_eq!(value("api2.example.com."), ["api-use1.example.com."]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_plans_conflict_fails_that_plan_alone() {
        let (f, z) = zone_world(3);
        // Another run moved api1 since it was read.
        f.put_record(
            "example.com.",
            record("api1.example.com.", "elsewhere.example.com."),
        );
        let clouds = f.clouds();
        let q = coalescer();
        // Hold the zone so that all three queue and go in one batch.
        let first = q.submit(clouds.dns.as_ref(), &z, swap("p0", 0), "alone");
        let rest = futures::future::join_all(
            (1..3).map(|i| q.submit(clouds.dns.as_ref(), &z, swap(&format!("p{i}"), i), "alone")),
        );
        let (a, rest) = tokio::join!(first, rest);
        assert!(a.is_ok());
        let e = rest[0].as_ref().unwrap_err();
        assert_eq!(e.code.as_deref(), Some("InvalidChangeBatch"), "{e}");
        let ok = rest[1].as_ref().unwrap();
        assert_eq!(
            ok.plans,
            ["p2"],
            "sent again alone after the whole batch was refused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zone_busy_with_another_clients_change_is_waited_on() {
        let (f, z) = zone_world(2);
        let clouds = f.clouds();
        // Another client's change: the zone is processing it for a while.
        clouds
            .dns
            .apply_changes(
                &z,
                &[DnsChange::Upsert(record("other.example.com.", "x."))],
                "other",
            )
            .await
            .unwrap();
        let q = coalescer();
        let c = q
            .submit(clouds.dns.as_ref(), &z, swap("p0", 0), "alone")
            .await
            .unwrap();
        assert_eq!(c.plans, ["p0"]);
        assert_eq!(f.state().writes.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_whose_step_is_gone_is_never_sent() {
        let (f, z) = zone_world(2);
        let clouds = f.clouds();
        let q = coalescer();
        let mut first = Box::pin(q.submit(clouds.dns.as_ref(), &z, swap("p0", 0), "alone"));
        let mut dropped = Box::pin(q.submit(clouds.dns.as_ref(), &z, swap("p1", 1), "alone"));
        // Both queue; the second is then dropped before its turn.
        let _ = futures::poll!(&mut first);
        let _ = futures::poll!(&mut dropped);
        drop(dropped);
        first.await.unwrap();
        let recs = &f.state().records[&z.id];
        let api1 = recs.iter().find(|r| r.name == "api1.example.com.").unwrap();
        assert_eq!(api1.values, ["api-usw2.example.com."]);
    }
}
