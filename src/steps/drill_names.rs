//! Drill names and tags: how everything a drill creates is found again
//! without its journal.
//!
//! Databases and groups carry the tags [`RUN_TAG`], [`OWNER_TAG`] and
//! [`EXPIRES_TAG`]; a raised group keeps the capacity to restore in
//! [`RESTORE_TAG`]; drill DNS records are named `drill-<short id>.<name>`
//! where the short id holds the drill's start time (see [`short_id`]).
//! The drill step kinds (`drill_*.rs`) name what they create with these
//! functions, and the sweep (`crate::cleanup::sweep`) finds leftovers by
//! them, so the names live below both, in one place.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::journal::Temp;
use crate::plan::kinds::traffic::Zone;

/// Tag naming the drill run that created (or raised) a resource.
pub const RUN_TAG: &str = "drctl:drill-run";
/// Tag naming who ran the drill (host, and operator when known).
pub const OWNER_TAG: &str = "drctl:drill-owner";
/// Tag holding the instant after which a sweep may remove the resource.
pub const EXPIRES_TAG: &str = "drctl:drill-expires";
/// Tag on a raised group: the capacity to restore (`min/desired/max` on an
/// Auto Scaling group; one count on a group the generic `drill-raise`
/// marks, an ECS service's desired count).
pub const RESTORE_TAG: &str = "drctl:drill-restore";
/// Every tag a drill puts on a resource (what cleanup, and a failover
/// taking a raised group over, remove).
pub const TAGS: [&str; 4] = [RUN_TAG, OWNER_TAG, EXPIRES_TAG, RESTORE_TAG];
/// Prefix of every drill DNS record's first label.
pub const RECORD_PREFIX: &str = "drill-";
/// What a drill control's key adds to production's control key
/// (`<key>.drill-<short id>`).
pub const CONTROL_INFIX: &str = ".drill-";

/// How long after its expiry a drill resource is left alone by a sweep
/// when the run that made it may still be cleaning up.
pub const SWEEP_GRACE: Duration = Duration::from_secs(5 * 60);

/// The short id of a drill run, used in names: the start time and the
/// run id's random suffix, lower case (`20261122t1920z-ab12`). A sweep reads
/// the start back from it ([`started_from_short_id`]).
pub fn short_id(run_id: &str) -> String {
    let stamp = run_id.get(..16).unwrap_or(run_id);
    let suffix = run_id.rsplit('-').next().unwrap_or_default();
    format!("{}-{suffix}", stamp.to_ascii_lowercase())
}

/// When the drill whose short id is `short` started.
pub fn started_from_short_id(short: &str) -> Option<DateTime<Utc>> {
    let stamp = short.get(..16)?.to_ascii_uppercase();
    NaiveDateTime::parse_from_str(&stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The id of a drill's temporary database for instance `base` (RDS ids:
/// at most 63 letters, digits and hyphens, starting with a letter, no
/// double hyphen, not ending in one). A name too long keeps its start and
/// ends with a digest of the whole base instead, so that two long bases
/// never share a temporary id.
pub fn temp_database_id(run_id: &str, base: &str) -> String {
    const MAX: usize = 63;
    let clean = |s: String| {
        let mut id = s.to_ascii_lowercase();
        id.retain(|c| c.is_ascii_alphanumeric() || c == '-');
        while id.contains("--") {
            id = id.replace("--", "-");
        }
        id
    };
    let id = clean(format!("drill-{}-{base}", short_id(run_id)));
    if id.len() <= MAX {
        return id.trim_end_matches('-').to_string();
    }
    use sha2::Digest as _;
    let digest = hex::encode(&sha2::Sha256::digest(base.as_bytes())[..4]);
    let mut head = id;
    head.truncate(MAX - digest.len() - 1);
    format!("{}-{digest}", head.trim_end_matches('-'))
}

/// The id of a drill's copy of Aurora cluster `member` (cluster ids follow
/// the rules of instance ids, [`temp_database_id`]).
pub fn temp_cluster_id(run_id: &str, member: &str) -> String {
    temp_database_id(run_id, member)
}

/// The id of the writer instance in a drill's copy of Aurora cluster
/// `member` (instances and clusters are named apart in RDS; the suffix
/// says what it is in a listing of instances).
pub fn temp_writer_id(run_id: &str, member: &str) -> String {
    temp_database_id(run_id, &format!("{member}-writer"))
}

/// The name of a drill's DNS record for the plan's record `name`.
pub fn record_name(run_id: &str, name: &str) -> String {
    let name = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    format!("{RECORD_PREFIX}{}.{name}", short_id(run_id))
}

/// The drill control beside production's control `control` (an object
/// URL): `<control>.drill-<short id>`, in the same bucket, so the same
/// region's endpoint writes it and the same bucket policy lets the health
/// checkers read it.
pub fn control_url(run_id: &str, control: &str) -> String {
    format!("{control}{CONTROL_INFIX}{}", short_id(run_id))
}

/// The short id of the drill whose control `url` sits beside production's
/// `control`, when it is one.
pub fn drill_of_control<'a>(control: &str, url: &'a str) -> Option<&'a str> {
    let short = url.strip_prefix(control)?.strip_prefix(CONTROL_INFIX)?;
    started_from_short_id(short).map(|_| short)
}

/// The set identifier of a drill's failover record: the drill's own (never
/// production's: a DELETE on LocalStack removes every record sharing a set
/// identifier), from the record id and production's identifier `base`.
pub fn set_identifier(run_id: &str, record: &str, base: &str) -> String {
    let mut id = format!("{RECORD_PREFIX}{}-{record}-{base}", short_id(run_id));
    id.truncate(128);
    id
}

/// The caller reference of a drill's health check for `record` in
/// `region` (Route 53: at most 64 characters; the record id as a digest).
pub fn health_check_reference(run_id: &str, record: &str, region: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(&sha2::Sha256::digest(record.as_bytes())[..4]);
    let mut r = format!("{RECORD_PREFIX}{}-{region}", short_id(run_id));
    r.truncate(64 - digest.len() - 1);
    format!("{r}-{digest}")
}

/// The tags every drill resource carries.
pub fn tags(run_id: &str, owner: &str, expires: DateTime<Utc>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RUN_TAG.to_string(), run_id.to_string()),
        (OWNER_TAG.to_string(), owner.to_string()),
        (
            EXPIRES_TAG.to_string(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ])
}

/// Who runs a drill, for the owner tag: host and process.
pub fn owner() -> String {
    format!("{}/pid {}", crate::state::hostname(), std::process::id())
}

/// When a drill resource tagged `tags` expires, if it says.
pub fn expiry(tags: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    tags.get(EXPIRES_TAG)?.parse().ok()
}

/// The longest a drill of a plan of this tier may run before it aborts into
/// cleanup, unless `--max-duration` says otherwise: twice the RTO, at least
/// 15 minutes (the temporary replica alone takes minutes on RDS).
pub fn default_max_duration(rto: Duration) -> Duration {
    rto.saturating_mul(2).max(Duration::from_secs(15 * 60))
}

/// A plan's drill budget without `--max-duration`: its `[drill]
/// max_duration`, else its tier's default.
pub fn plan_max_duration(plan: &crate::plan::Plan) -> Duration {
    plan.spec
        .drill
        .as_ref()
        .and_then(|d| d.max_duration())
        .unwrap_or_else(|| default_max_duration(plan.tier.rto))
}

/// The command that deletes a drill's copy `address` of kind `kind` in
/// `region` by hand, from its kind's template (`DrillAbout::manual`).
fn manual_copy(kind: crate::plan::spec::ResourceKind, region: &str, address: &str) -> String {
    let (project, name) = address.rsplit_once('/').unwrap_or(("", address));
    let manual = kind.drilling().map_or("", |d| d.about().manual);
    manual
        .replace("{region}", region)
        .replace("{address}", address)
        .replace("{project}", project)
        .replace("{name}", name)
}

/// The command that removes `temp` by hand, for when cleanup cannot.
pub fn manual_removal(temp: &Temp) -> String {
    match temp {
        Temp::Database { region, id } => format!(
            "aws rds delete-db-instance --region {region} --db-instance-identifier {id} --skip-final-snapshot"
        ),
        Temp::Cluster { region, id } => format!(
            "aws rds describe-db-clusters --region {region} --db-cluster-identifier {id} (its DBClusterMembers), then for each member aws rds delete-db-instance --region {region} --db-instance-identifier INSTANCE --skip-final-snapshot, then aws rds delete-db-cluster --region {region} --db-cluster-identifier {id} --skip-final-snapshot"
        ),
        Temp::Capacity { region, group } => format!(
            "unless a failover owns the group now (`drctl runs list`), read the tag {} of group {group} (aws autoscaling describe-tags --region {region}), then aws autoscaling update-auto-scaling-group --region {region} --auto-scaling-group-name {group} --min-size MIN --desired-capacity DESIRED --max-size MAX; then remove its drctl:drill-* tags (aws autoscaling delete-tags)",
            RESTORE_TAG
        ),
        Temp::NodeCapacity {
            region,
            cluster,
            group,
            restore,
        } => format!(
            "unless a failover owns the node group now (`drctl runs list`), aws eks update-nodegroup-config --region {region} --cluster-name {cluster} --nodegroup-name {group} --scaling-config minSize={},desiredSize={},maxSize={} (its size before the drill, from the drill's journal)",
            restore.min, restore.desired, restore.max
        ),
        Temp::Copy {
            kind,
            region,
            address,
        } => manual_copy(*kind, region, address),
        Temp::SqlClone { project, name, .. } => format!(
            "gcloud sql instances delete {name} --project {project} (a drill's clone: its name starts with drill-)"
        ),
        Temp::MigSize {
            region,
            project,
            group,
            autoscaler: Some(a),
            restore,
        } => format!(
            "unless a failover owns group {group} now (`drctl runs list`), gcloud compute instance-groups managed update-autoscaling {group} --region {region} --project {project} --min-num-replicas {restore} (autoscaler {a}'s minimum before the drill, from its journal)"
        ),
        Temp::MigSize {
            region,
            project,
            group,
            restore,
            ..
        } => format!(
            "unless a failover owns the group now (`drctl runs list`), gcloud compute instance-groups managed resize {group} --region {region} --project {project} --size {restore} (its size before the drill, from its journal)"
        ),
        Temp::RunFloor {
            region,
            project,
            service,
            restore,
        } => format!(
            "unless a failover owns the service now (`drctl runs list`), gcloud run services update {service} --region {region} --project {project} --min-instances {restore} (its floor before the drill, from its journal)"
        ),
        Temp::Raised {
            kind,
            region,
            group,
            restore,
        } => manual_raised_restore(kind, region, group, *restore),
        t @ (Temp::Record { .. } | Temp::CloudRecord { .. }) => match t.drill_record() {
            Some((kind, project, zone, name, rtype)) => match Zone::of(kind, project, zone) {
                Some(z) => z.api.manual_delete(z, name, rtype),
                None => format!("delete the {rtype} record {name} in zone {zone}"),
            },
            None => format!("delete {t}"),
        },
        Temp::Control { region, url } => format!("aws s3 rm --region {region} {url}"),
        Temp::HealthCheck { control, .. } => format!(
            "find the health check whose resource path reads {control} (aws route53 list-health-checks), then aws route53 delete-health-check --health-check-id ID"
        ),
    }
}

/// The command that returns group `group` in `region`, of a kind the
/// generic `drill-raise` raises, to `restore` by hand: its kind's scaling
/// role says how, else the group is named to return by hand.
fn manual_raised_restore(
    kind: &crate::plan::spec::ResourceKind,
    region: &str,
    group: &str,
    restore: crate::cloud::Size,
) -> String {
    match kind.scaling() {
        Some(s) => format!(
            "unless a failover owns it now (`drctl runs list`), {} (its size before the drill, from its journal or its {} tag)",
            s.manual(region, group, restore),
            RESTORE_TAG
        ),
        None => format!(
            "return {} {group} in {region} to {restore} by hand",
            kind.table()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rto * 2` overflowed for an RTO near `Duration::MAX`.
    #[test]
    fn regression_default_max_duration_of_a_huge_rto_saturates() {
        assert_eq!(default_max_duration(Duration::MAX), Duration::MAX);
        assert_eq!(
            default_max_duration(Duration::from_secs(3600)),
            Duration::from_secs(7200)
        );
    }

    #[test]
    fn short_ids_carry_the_start_time_back() {
        let run = "20261122T192005Z-payments-ab12";
        assert_eq!(short_id(run), "20261122t192005z-ab12");
        assert_eq!(
            started_from_short_id(&short_id(run)),
            Some("2026-11-22T19:20:05Z".parse().unwrap())
        );
        assert_eq!(started_from_short_id("nonsense"), None);
    }

    #[test]
    fn temp_database_ids_are_valid_rds_ids() {
        let run = "20261122T192005Z-payments-ab12";
        let id = temp_database_id(run, "payments-db");
        assert_eq!(id, "drill-20261122t192005z-ab12-payments-db");
        let long = temp_database_id(run, &"x".repeat(80));
        assert!(long.len() <= 63 && !long.ends_with('-'));
        // Regression: two long bases that share their first 63 characters
        // once shared one temporary id.
        let a = temp_database_id(run, &format!("{}-a", "payments-db-use1-".repeat(3)));
        let b = temp_database_id(run, &format!("{}-b", "payments-db-use1-".repeat(3)));
        assert_ne!(a, b);
        assert!(a.len() <= 63 && b.len() <= 63);
        assert!(!temp_database_id(run, "a--b-").contains("--"));
    }

    #[test]
    fn drill_controls_sit_beside_production_and_are_told_apart() {
        let run = "20261122T192005Z-checkout-ab12";
        let prod = "s3://drctl-control-usw2/checkout/checkout";
        let url = control_url(run, prod);
        assert_eq!(url, format!("{prod}.drill-20261122t192005z-ab12"));
        assert_eq!(drill_of_control(prod, &url), Some("20261122t192005z-ab12"));
        assert_eq!(drill_of_control(prod, prod), None);
        assert_eq!(
            drill_of_control(prod, &format!("{prod}.drill-nonsense")),
            None
        );
        let r = health_check_reference(run, &"x".repeat(90), "ap-southeast-2");
        assert!(r.len() <= 64 && r.starts_with(RECORD_PREFIX), "{r}");
        assert_ne!(r, health_check_reference(run, "y", "ap-southeast-2"));
        assert_eq!(
            set_identifier(run, "checkout", "us-east-1"),
            "drill-20261122t192005z-ab12-checkout-us-east-1"
        );
    }

    #[test]
    fn drill_records_sit_under_the_real_name() {
        let run = "20261122T192005Z-payments-ab12";
        assert_eq!(
            record_name(run, "api.example.com"),
            "drill-20261122t192005z-ab12.api.example.com."
        );
    }

    /// Every kind whose data role drills says how its copy is deleted by
    /// hand, naming the copy as its provider's command wants it.
    #[test]
    fn every_drill_copy_says_how_to_delete_it_by_hand() {
        use crate::plan::spec::ResourceKind;
        let of = |kind, address: &str| {
            manual_removal(&Temp::Copy {
                kind,
                region: "us-east4".into(),
                address: address.into(),
            })
        };
        let rds = of(ResourceKind::Database, "drill-x-db");
        assert!(rds.contains("--db-instance-identifier drill-x-db"), "{rds}");
        let aurora = of(ResourceKind::GlobalDatabase, "drill-x-c");
        assert!(
            aurora
                .contains("delete-db-cluster --region us-east4 --db-cluster-identifier drill-x-c"),
            "{aurora}"
        );
        let sql = of(ResourceKind::CloudSql, "drctl-emu/drill-x-sql");
        assert!(
            sql.starts_with("gcloud sql instances delete drill-x-sql --project drctl-emu"),
            "{sql}"
        );
        for kind in ResourceKind::ALL.iter().filter(|k| k.drilling().is_some()) {
            assert!(!of(*kind, "p/c").is_empty(), "{kind:?}");
        }
    }
}
