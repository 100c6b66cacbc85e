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

use crate::cloud::DnsChange;
use crate::cloud::model::Route53Batches;

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
}
