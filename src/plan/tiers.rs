//! Tiers: RTO/RPO targets and policy, built in and overridable.
//!
//! Built-ins make a plan useful with no extra file; `plans/tiers.toml` lets an
//! organisation tighten or add tiers in one place for every plan.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a failover of this tier needs an explicit approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// `--approve` (or a confirmation on a terminal) is required.
    Required,
    /// No approval needed.
    None,
}

/// A resolved tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tier {
    /// Name.
    pub name: String,
    /// Recovery time objective.
    #[serde(with = "secs")]
    pub rto: Duration,
    /// Recovery point objective.
    #[serde(with = "secs")]
    pub rpo: Duration,
    /// Approval policy.
    pub approval: Approval,
    /// Longest allowed time between drills.
    #[serde(with = "secs")]
    pub drill_interval: Duration,
    /// Rank for scheduling (lower runs first): critical 0, important 1, standard 2, others 3.
    pub rank: u8,
    /// S3 Object Lock retention of the tier's evidence objects (a plan's
    /// `[evidence] retention` overrides it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_retention: Option<super::spec::RetentionSpec>,
    /// What `drctl watch` may do for the tier's plans by default (a plan's
    /// `[watch] mode` overrides it; `None`: observe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchMode>,
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// A tier as `tiers.toml` writes it (durations as text, validated later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierSpec {
    /// RTO (`15m`).
    pub rto: String,
    /// RPO (`5m`).
    pub rpo: String,
    /// Approval policy.
    #[serde(default = "default_approval")]
    pub approval: Approval,
    /// Drill interval (`30d`).
    #[serde(default = "default_interval")]
    pub drill_interval: String,
    /// Evidence retention (`{ mode = "governance", days = 365 }`); default:
    /// governance, 365 days.
    #[serde(default = "default_retention")]
    pub evidence_retention: Option<super::spec::RetentionSpec>,
    /// `drctl watch`'s default mode for the tier's plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchMode>,
}

fn default_approval() -> Approval {
    Approval::None
}
/// Governance mode, a year: what `terraform/evidence.tf` sets as the
/// bucket default too (see terraform/README.md, "Evidence retention").
pub fn default_retention() -> Option<super::spec::RetentionSpec> {
    Some(super::spec::RetentionSpec {
        mode: crate::cloud::LockMode::Governance,
        days: 365,
    })
}
fn default_interval() -> String {
    "90d".into()
}

/// The `tiers.toml` file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TiersFile {
    /// Tiers by name.
    #[serde(default)]
    pub tiers: BTreeMap<String, TierSpec>,
}

/// The rank of a tier name.
pub fn rank_of(name: &str) -> u8 {
    match name {
        "critical" => 0,
        "important" => 1,
        "standard" => 2,
        _ => 3,
    }
}

/// The built-in tiers: critical 15m/5m, important 30m/15m, standard 1h/30m.
pub fn builtin() -> BTreeMap<String, Tier> {
    let mk = |name: &str, rto: u64, rpo: u64, approval, interval_days: u64| {
        (
            name.to_string(),
            Tier {
                name: name.to_string(),
                rto: Duration::from_secs(rto * 60),
                rpo: Duration::from_secs(rpo * 60),
                approval,
                drill_interval: Duration::from_secs(interval_days * 86_400),
                rank: rank_of(name),
                evidence_retention: default_retention(),
                watch: None,
            },
        )
    };
    BTreeMap::from([
        mk("critical", 15, 5, Approval::Required, 7),
        mk("important", 30, 15, Approval::None, 30),
        mk("standard", 60, 30, Approval::None, 90),
    ])
}
