//! The plan file format, as serde structures (documented in `docs/plans.md`).
//!
//! These types are exactly what a file says, before validation: durations and
//! cron expressions are kept as text so that *every* bad value can be reported
//! with its position in one run, instead of serde stopping at the first one.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Region name → provider id of a resource in that region.
pub type PerRegion = IndexMap<String, String>;

/// One plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Name, tier, regions.
    pub plan: PlanHeader,
    /// Where evidence of runs is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceSpec>,
    /// When drills run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSpec>,
    /// Databases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database: Vec<DatabaseSpec>,
    /// Aurora global databases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_database: Vec<GlobalDatabaseSpec>,
    /// Cloud SQL instances (GCP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_sql: Vec<CloudSqlSpec>,
    /// Compute groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute: Vec<ComputeSpec>,
    /// EKS managed node groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_group: Vec<NodeGroupSpec>,
    /// Cloud Run services (GCP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_run: Vec<CloudRunSpec>,
    /// DNS records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsSpec>,
    /// Health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<CheckSpec>,
    /// Buckets whose replication is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket: Vec<BucketSpec>,
    /// Regional managed instance groups (GCP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_group: Vec<InstanceGroupSpec>,
    /// Cloud DNS record sets (GCP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_dns: Vec<CloudDnsSpec>,
    /// ECS services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecs_service: Vec<EcsServiceSpec>,
    /// Kubernetes workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<KubernetesSpec>,
    /// RDS instances whose standby is their backups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_database: Vec<BackupDatabaseSpec>,
    /// Cloud SQL instances whose standby is their backups (GCP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_sql_backup: Vec<CloudSqlBackupSpec>,
    /// Aurora clusters whose standby is their copied snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_cluster: Vec<BackupClusterSpec>,
    /// Who is told of the plan's runs (besides `drctl.toml`'s sinks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::plan::notify::NotifySpec>,
    /// What `drctl watch` may do about an outage of the plan's active region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<crate::plan::watch::WatchSpec>,
}

/// The `[plan]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// Unique plan name (`[a-z0-9-]`).
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// Who answers for the plan (a team or a person): the owner of the
    /// findings a report lists for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tier name: built-in `critical`, `important`, `standard`, or one from `tiers.toml`.
    pub tier: String,
    /// Regions, home first, then standbys in order of preference: the
    /// plan's sites (see `plan::sites`).
    pub regions: Vec<String>,
    /// The GCP region of each site, in the order of `regions`, in a plan
    /// that mixes AWS and GCP resources (empty: a plan on one cloud).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gcp_regions: Vec<String>,
    /// The regions the plan's data may be in (data residency), AWS's and
    /// GCP's alike; empty (or absent): no limit. A plan with a site
    /// (`regions`, `gcp_regions`) outside them is refused at validation, so
    /// no failover, drill, copy or restore of its resources is made there:
    /// every run's regions are the plan's. Buckets and topics named by
    /// address are not checked (their region is not in the plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_regions: Vec<String>,
}

/// The `[evidence]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSpec {
    /// `s3://bucket/prefix` or `gs://bucket/prefix` destinations.
    pub destinations: Vec<String>,
    /// How long S3 Object Lock keeps each evidence object (overrides the
    /// tier's `evidence_retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionSpec>,
}

/// `retention = { mode = "governance", days = 365 }`: S3 Object Lock
/// retention for evidence objects, on buckets that have Object Lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    /// `governance` (an administrator with the bypass permission can still
    /// correct a mistake) or `compliance` (nobody can, until it expires).
    pub mode: crate::cloud::LockMode,
    /// Days from the write.
    pub days: u32,
}

impl RetentionSpec {
    /// The retention of an object written at `at`.
    pub fn from(&self, at: chrono::DateTime<chrono::Utc>) -> crate::cloud::Retention {
        crate::cloud::Retention {
            mode: self.mode,
            until: super::duration::after(
                at,
                std::time::Duration::from_secs(u64::from(self.days) * 86_400),
            ),
        }
    }
}

/// The `[drill]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSpec {
    /// Cron expression (5 fields, UTC) for scheduled drills.
    pub schedule: String,
    /// Longest a drill of this plan runs before it aborts into cleanup
    /// (`30m`); default: twice the tier's RTO, at least 15 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Windows in which no drill of this plan starts (month-end, a freeze).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blackout: Vec<BlackoutSpec>,
}

/// A recurring window without drills: it opens at each occurrence of
/// `start` (5-field cron, UTC) and lasts `for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlackoutSpec {
    /// When the window opens (cron, UTC): `"0 0 28 * *"`.
    pub start: String,
    /// How long it lasts: `"4d"`.
    #[serde(rename = "for")]
    pub length: String,
    /// Why, for people (`"month-end close"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl DrillSpec {
    /// The plan's `max_duration`, when it is set and valid.
    pub fn max_duration(&self) -> Option<std::time::Duration> {
        super::duration::parse_duration(self.max_duration.as_deref()?).ok()
    }

    /// The blackout window `at` falls in, described, if any.
    pub fn blackout_at(&self, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        self.blackout.iter().find_map(|b| {
            let cron = super::cron::parse_cron(&b.start).ok()?;
            let length = super::duration::parse_duration(&b.length).ok()?;
            let opened = cron.find_previous_occurrence(&at, true).ok()?;
            let closes = super::duration::after(opened, length);
            (at < closes).then(|| {
                format!(
                    "blackout window `{}` for {} ({}) until {closes}",
                    b.start,
                    b.length,
                    b.reason.as_deref().unwrap_or("no reason given")
                )
            })
        })
    }
}

/// The resources' own types, each in its kind's file (`plan/kinds/`), and
/// the kind list's vocabulary, where every reader has found them.
pub use super::kinds::{
    BackupClusterSpec, BackupDatabaseSpec, BucketSpec, CapacitySpec, CheckSpec, Cloud,
    CloudDnsSpec, CloudRunSpec, CloudSqlBackupSpec, CloudSqlSpec, ComputeSpec, DatabaseSpec,
    DbStrategy, DnsSpec, EcsServiceSpec, GlobalDatabaseSpec, InstanceGroupSpec, KubernetesSpec,
    NodeGroupSpec, ResourceKind, ResourceRef, SwitchMode,
};

/// Where a kind of resource stands in the order every failover follows:
/// the target's data and capacity first, then the probes of what will
/// serve, then traffic. The one statement of that order: validation derives
/// the implicit dependencies from it (DNS waits for databases, compute and
/// checks; checks wait for databases and compute), and the step graph puts
/// each kind's steps in the phase of its stage (`steps::graph::Phase::of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Data and capacity in the target (databases, compute).
    Ready,
    /// Probes of what will serve (checks).
    Probe,
    /// Traffic (DNS).
    Traffic,
}

impl PlanSpec {
    /// Home region (the first).
    pub fn home(&self) -> &str {
        self.plan
            .regions
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The plan's sites: its regions, each with the GCP region paired with
    /// it.
    pub fn sites(&self) -> super::sites::Sites {
        super::sites::Sites::new(&self.plan.regions, &self.plan.gcp_regions)
    }

    /// The database resource with this id.
    pub fn database(&self, id: &str) -> Option<&DatabaseSpec> {
        self.database.iter().find(|d| d.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    /// A blackout `for` or a retention near the end of time overflowed
    /// `DateTime` addition (a panic in every scheduler): both saturate.
    #[test]
    fn regression_blackout_and_retention_times_saturate() {
        let drill = DrillSpec {
            schedule: "0 3 * * MON".into(),
            max_duration: None,
            blackout: vec![BlackoutSpec {
                start: "0 0 28 * *".into(),
                length: "3650d".into(),
                reason: None,
            }],
        };
        let now = Utc::now();
        assert!(drill.blackout_at(now).is_some());
        let end = DateTime::<Utc>::MAX_UTC - chrono::Duration::days(1);
        let _ = drill.blackout_at(end);
        let kept = RetentionSpec {
            mode: crate::cloud::LockMode::Governance,
            days: u32::MAX,
        };
        assert_eq!(kept.from(end).until, DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            RetentionSpec { days: 1, ..kept }.from(now).until,
            now + chrono::Duration::days(1)
        );
    }
}
