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
    /// Compute groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute: Vec<ComputeSpec>,
    /// DNS records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsSpec>,
    /// Health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<CheckSpec>,
    /// Buckets whose replication is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket: Vec<BucketSpec>,
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
    /// Regions, home first, then standbys in order of preference.
    pub regions: Vec<String>,
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

/// How a database moves to another region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbStrategy {
    /// Promote the cross-region read replica in the target region.
    PromoteReplica,
    /// Restore the target region's instance to a point in time, into a new instance.
    PointInTimeRestore,
}

/// A `[[database]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// Engine, for people (`postgres`, `mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Failover strategy.
    pub strategy: DbStrategy,
    /// Instance identifier per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// Min/desired/max capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacitySpec {
    /// Minimum.
    pub min: u32,
    /// Desired.
    pub desired: u32,
    /// Maximum.
    pub max: u32,
}

impl From<CapacitySpec> for crate::cloud::Capacity {
    fn from(c: CapacitySpec) -> Self {
        Self {
            min: c.min,
            desired: c.desired,
            max: c.max,
        }
    }
}

/// A `[[compute]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeSpec {
    /// Resource id.
    pub id: String,
    /// Capacity in the active region.
    pub active: CapacitySpec,
    /// Capacity in standby regions.
    pub standby: CapacitySpec,
    /// Auto Scaling group name per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// How a DNS record is switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchMode {
    /// UPSERT the record's value to the target region's target.
    Upsert,
    /// One weighted record per region (set identifier = region): active 100, others 0.
    Weighted,
    /// A data-plane switch: Route 53 failover records, each region's
    /// following a health check that reads a control object in that region
    /// (`controls`). Failing over writes the controls; no Route 53 API call.
    HealthCheck,
}

impl SwitchMode {
    /// The plan's spelling (`upsert`, `weighted`, `health-check`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Weighted => "weighted",
            Self::HealthCheck => "health-check",
        }
    }

    /// Whether switching needs Route 53's API (its control plane, hosted in
    /// us-east-1 alone).
    pub fn needs_route53_api(self) -> bool {
        !matches!(self, Self::HealthCheck)
    }
}

/// A `[[dns]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsSpec {
    /// Resource id.
    pub id: String,
    /// Hosted zone name (`example.com.`).
    pub zone: String,
    /// Record name (`api.example.com.`).
    pub name: String,
    /// Record type (`CNAME`, `A`, `AAAA`).
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// How to switch.
    #[serde(default = "default_switch")]
    pub switch: SwitchMode,
    /// Record value per region.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub targets: PerRegion,
    /// Take the value from this database resource's primary endpoint instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// `switch = "health-check"`: the control object per region
    /// (`s3://bucket/key`, a bucket in that region).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub controls: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn default_ttl() -> i64 {
    60
}
fn default_switch() -> SwitchMode {
    SwitchMode::Upsert
}

/// A `[[check]]` entry: an HTTP probe that must pass before traffic moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Resource id.
    pub id: String,
    /// URL to probe per region.
    pub regions: PerRegion,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Per-probe timeout (`5s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn default_status() -> u16 {
    200
}
fn default_timeout() -> String {
    "5s".into()
}

/// A `[[bucket]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    /// Resource id.
    pub id: String,
    /// `s3://` or `gs://` bucket per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// The kind of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// `[[database]]`.
    Database,
    /// `[[compute]]`.
    Compute,
    /// `[[dns]]`.
    Dns,
    /// `[[check]]`.
    Check,
    /// `[[bucket]]`.
    Bucket,
}

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

impl ResourceKind {
    /// Every kind, in the order of a plan file's tables.
    pub const ALL: [ResourceKind; 5] = [
        Self::Database,
        Self::Compute,
        Self::Dns,
        Self::Check,
        Self::Bucket,
    ];

    /// The kind's stage in a failover (`None`: outside the order, as a
    /// bucket's replication check is).
    pub fn stage(self) -> Option<Stage> {
        match self {
            Self::Database | Self::Compute => Some(Stage::Ready),
            Self::Check => Some(Stage::Probe),
            Self::Dns => Some(Stage::Traffic),
            Self::Bucket => None,
        }
    }

    /// The kinds whose resources a resource of this kind waits for: every
    /// kind of an earlier stage.
    pub fn waits_for(self) -> Vec<ResourceKind> {
        self.stage().map(Self::before).unwrap_or_default()
    }

    /// The kinds of stages up to `stage`, excluded.
    pub fn before(stage: Stage) -> Vec<ResourceKind> {
        Self::ALL
            .into_iter()
            .filter(|k| k.stage().is_some_and(|s| s < stage))
            .collect()
    }

    /// The table name in a plan file.
    pub fn table(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Compute => "compute",
            Self::Dns => "dns",
            Self::Check => "check",
            Self::Bucket => "bucket",
        }
    }
}

/// A borrowed view of any resource, for code that treats them alike.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef<'a> {
    /// Kind.
    pub kind: ResourceKind,
    /// Index within its kind's list (for error paths).
    pub index: usize,
    /// Id.
    pub id: &'a str,
    /// Explicit predecessors.
    pub after: &'a [String],
    /// Per-region ids, when the kind has them (`targets` for DNS).
    pub regions: Option<&'a PerRegion>,
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
