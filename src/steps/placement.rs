//! Where a plan serves, as the cloud says it: the reads of what a failover
//! changes (a database copy's role, a record's values, a data-plane
//! control), each bounded, every record and control through its kind's
//! traffic role (`plan::kinds::traffic`, whose `points_to` maps a record's
//! values to a region of the plan), and the rule for a record that follows
//! a copy's endpoint (`followed_region`).
//!
//! `drctl status` and `drctl watch` both name a plan's active region from
//! the cloud; both read through here (this floor is under both), so that
//! they read the same things the same way and recognise the same targets.
//! Nothing here judges: a read comes back as it came, errors included
//! (a read that ran past its bound is a connection failure of its region).

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::cloud::control::{Control, ControlState};
use crate::cloud::{CloudError, Clouds, ObjectUrl};
use crate::plan::Plan;
use crate::plan::kinds::traffic::Points;
use crate::plan::kinds::{self, Shown};

pub use crate::plan::kinds::bounded;

/// The plan's records, every traffic kind's ([`Points`]), in plan order:
/// what `status` and `watch` read where they point, and whose controls
/// they read.
pub fn records(plan: &Plan) -> impl Iterator<Item = &dyn Points> {
    (kinds::each(&plan.spec).into_iter()).filter_map(|r| match r.shown() {
        Shown::Traffic(p) => Some(p),
        Shown::Data(_) | Shown::Capacity(_) | Shown::Steps { .. } => None,
    })
}

/// A data-plane control as read.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlRead {
    /// The control.
    Found(Control),
    /// No object there (`drctl dns prepare` was never run).
    Missing,
    /// An object that is not a drctl control, or a URL that is not an
    /// object's.
    Invalid(String),
}

/// The control at `url` (an object in `region`), through that region's
/// own endpoint, under `limit`.
pub async fn read_control(
    clouds: &Clouds,
    limit: Duration,
    region: &str,
    url: &str,
) -> Result<ControlRead, CloudError> {
    let Ok(object) = ObjectUrl::parse(url) else {
        return Ok(ControlRead::Invalid(format!("{url} is not an object URL")));
    };
    let body = bounded(
        limit,
        ("s3", "GetObject", url, region),
        clouds.objects.get(region, &object),
    )
    .await?;
    Ok(match body {
        None => ControlRead::Missing,
        Some(b) => match Control::parse(&b) {
            Some(c) => ControlRead::Found(c),
            None => ControlRead::Invalid(format!("{url} is not a drctl control object")),
        },
    })
}

/// What one data-plane control said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlSaid {
    /// Its region serves.
    Serve,
    /// Its region is drained.
    Drain,
    /// There is none (`drctl dns prepare` never ran).
    Missing,
    /// Its read did not answer, or not usefully: why.
    Unknown(String),
}

/// One data-plane control (a `switch = "health-check"` record's, in one
/// region), as read through that region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlReading {
    /// The record's resource (`[[dns]]`, `[[cloud_dns]]`).
    pub record: String,
    /// The plan's region it controls (a `[[cloud_dns]]` control lives in
    /// that site's GCP region).
    pub region: String,
    /// What it said.
    pub said: ControlSaid,
}

/// The plan's data-plane controls, every traffic kind's
/// ([`Points::controls`]), each read through its own region: record by
/// record, each record's in the order of the plan's regions.
pub async fn controls(clouds: &Clouds, plan: &Plan, timeout: Duration) -> Vec<ControlReading> {
    let reads = records(plan).flat_map(|d| {
        let controls = d.controls();
        (plan.regions().iter()).filter_map(move |r| {
            (controls.iter().find(|c| c.site == r.as_str())).map(|c| {
                (
                    d.id().to_string(),
                    r.clone(),
                    c.via.to_string(),
                    c.url.to_string(),
                )
            })
        })
    });
    join_all(reads.map(|(record, region, via, url)| async move {
        let said = match read_control(clouds, timeout, &via, &url).await {
            Ok(ControlRead::Found(c)) => match c.state {
                ControlState::Serve => ControlSaid::Serve,
                ControlState::Drain => ControlSaid::Drain,
            },
            Ok(ControlRead::Missing) => ControlSaid::Missing,
            Ok(ControlRead::Invalid(why)) => ControlSaid::Unknown(why),
            Err(e) => ControlSaid::Unknown(e.summary()),
        };
        ControlReading {
            record,
            region,
            said,
        }
    }))
    .await
}

pub use crate::plan::kinds::traffic::same_name;

/// One copy of a data resource as a reader of placement read it.
#[derive(Debug, Clone, Copy)]
pub struct CopyAt<'a> {
    /// The plan's data resource.
    pub id: &'a str,
    /// The copy's region.
    pub region: &'a str,
    /// Its endpoint (what a record that follows it names), when read.
    pub endpoint: Option<&'a str>,
    /// Whether that endpoint follows the primary (a write endpoint both
    /// copies show: `CopyState::moves_with_primary`).
    pub moves: bool,
    /// Whether it read as the primary.
    pub primary: bool,
    /// Its other names, its own alone (`CopyState::own_names`).
    pub own_names: &'a [String],
}

/// The region that a record that follows data resource `db` points to
/// when its value is `value`: the copy whose endpoint it names. A name that
/// follows the primary (a write endpoint, which the provider itself moves:
/// Cloud SQL's) points where the copy that reads as the one primary is,
/// and nowhere while none does (its primary unread in an outage) or two
/// do: it says where the writer is, never which copy the record chose. One
/// rule for `status` and `watch`.
pub fn followed_region<'a>(
    copies: impl IntoIterator<Item = CopyAt<'a>>,
    db: &str,
    value: &str,
) -> Option<String> {
    let copies: Vec<CopyAt<'a>> = copies.into_iter().filter(|c| c.id == db).collect();
    let named: Vec<&CopyAt<'a>> = (copies.iter())
        .filter(|c| c.endpoint.is_some_and(|ep| same_name(ep, value)))
        .collect();
    if named.is_empty() {
        // A name of one copy alone, which records no longer follow (a
        // Cloud SQL instance's own, set before its write endpoint was):
        // it points at that copy, whatever its role.
        let own: Vec<&CopyAt<'a>> = (copies.iter())
            .filter(|c| c.own_names.iter().any(|n| same_name(n, value)))
            .collect();
        return match own.as_slice() {
            [one] => Some(one.region.to_string()),
            _ => None,
        };
    }
    if !named.iter().any(|c| c.moves) && named.len() == 1 {
        return Some(named[0].region.to_string());
    }
    match (named.iter().filter(|c| c.primary))
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => Some(one.region.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::DnsRecord;

    fn payments() -> Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .unwrap()
    }

    fn cname(value: &str) -> Vec<DnsRecord> {
        vec![DnsRecord::simple(
            "x".into(),
            "CNAME",
            Some(60),
            vec![value.into()],
        )]
    }

    #[test]
    fn a_record_points_to_the_region_whose_target_or_endpoint_it_names() {
        let plan = payments();
        let api = &plan.spec.dns[0];
        let none = |_: &str, _: &str| None;
        let (_, r) = api.points_to(&plan, &cname("API-USE1.example.com"), &none);
        assert_eq!(r.as_deref(), Some("us-east-1"));
        let (_, r) = api.points_to(&plan, &cname("elsewhere.example.com."), &none);
        assert_eq!(r, None);
        let db = &plan.spec.dns[1];
        let endpoint = |id: &str, value: &str| {
            (id == "payments-db" && same_name(value, "db.euw1.example"))
                .then(|| "eu-west-1".to_string())
        };
        let (values, r) = db.points_to(&plan, &cname("db.euw1.example."), &endpoint);
        assert_eq!(values, ["db.euw1.example."]);
        assert_eq!(r.as_deref(), Some("eu-west-1"));
    }

    /// Issue 40: a write endpoint is the same name on both copies; the
    /// record that follows it points where the primary is, and nowhere
    /// while no copy reads as the primary.
    #[test]
    fn a_shared_write_endpoint_points_where_the_primary_is() {
        let wep = "x1.y2.global.sql-psa.goog";
        let copy = |region, endpoint, primary| CopyAt {
            id: "orders-sql",
            region,
            endpoint: Some(endpoint),
            moves: endpoint == wep,
            primary,
            own_names: &[],
        };
        let both = |home_primary: bool| {
            [
                copy("us-central1", wep, home_primary),
                copy("us-east4", wep, !home_primary),
            ]
        };
        let value = "X1.y2.global.sql-psa.goog.";
        assert_eq!(
            followed_region(both(true), "orders-sql", value).as_deref(),
            Some("us-central1")
        );
        assert_eq!(
            followed_region(both(false), "orders-sql", value).as_deref(),
            Some("us-east4")
        );
        let neither = [
            copy("us-central1", wep, false),
            copy("us-east4", wep, false),
        ];
        assert_eq!(followed_region(neither, "orders-sql", value), None);
        // Review: the primary unread (its region down), only the DR
        // replica shows the write endpoint: it does not point there.
        let unread = CopyAt {
            endpoint: None,
            ..copy("us-central1", wep, false)
        };
        let outage = [unread, copy("us-east4", wep, false)];
        assert_eq!(followed_region(outage, "orders-sql", value), None);
        let split = [copy("us-central1", wep, true), copy("us-east4", wep, true)];
        assert_eq!(
            followed_region(split, "orders-sql", value),
            None,
            "two writers: nowhere"
        );
        let own = [
            copy("us-central1", "a.sql.goog", true),
            copy("us-east4", "b.sql.goog", false),
        ];
        assert_eq!(
            followed_region(own, "orders-sql", "b.sql.goog").as_deref(),
            Some("us-east4")
        );
        assert_eq!(followed_region(own, "other", "b.sql.goog"), None);
    }

    /// Regression (issue 40): a record an older drctl set to a Cloud SQL
    /// instance's own DNS name, before its write endpoint existed, read as
    /// "unrecognised" in `status` and `watch` once one did (both copies
    /// now show the write endpoint as what records follow). The instance's
    /// own name still points at that instance, whatever its role.
    #[test]
    fn regression_a_record_set_to_an_instances_own_name_read_as_unrecognised() {
        let wep = "x1.y2.global.sql-psa.goog";
        let names = [
            vec!["a.sql.goog".to_string()],
            vec!["b.sql.goog".to_string()],
        ];
        let copies = |home_primary: bool| {
            [
                CopyAt {
                    id: "orders-sql",
                    region: "us-central1",
                    endpoint: Some(wep),
                    moves: true,
                    primary: home_primary,
                    own_names: &names[0],
                },
                CopyAt {
                    id: "orders-sql",
                    region: "us-east4",
                    endpoint: Some(wep),
                    moves: true,
                    primary: !home_primary,
                    own_names: &names[1],
                },
            ]
        };
        for home_primary in [true, false] {
            let at = |v| followed_region(copies(home_primary), "orders-sql", v);
            assert_eq!(at("a.sql.goog.").as_deref(), Some("us-central1"));
            assert_eq!(at("B.sql.goog").as_deref(), Some("us-east4"));
            assert_eq!(at("c.sql.goog"), None, "a name of no copy");
        }
        // The write endpoint still points where the primary is.
        let at = followed_region(copies(false), "orders-sql", wep);
        assert_eq!(at.as_deref(), Some("us-east4"));
        // Another resource's copies never claim the name.
        assert_eq!(followed_region(copies(true), "other", "a.sql.goog"), None);
    }
}
