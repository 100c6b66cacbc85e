//! `drill-database`: a shadow drill's database. A temporary read replica of
//! the home primary is created in the target region, tagged with the
//! drill's run id, owner and expiry; its replica lag is read; then *it* is
//! promoted and checked writable (available, no longer a replica). The
//! real replica in the target is never promoted or modified: promoting one
//! replica has no effect on the other replicas of the same source.
//!
//! The lag of the temporary replica at promotion is the drill's measured
//! RPO: the same metric, on the same API path, that a failover reads. RDS
//! publishes `ReplicaLag` about once a minute, so the step waits for a first
//! datapoint up to [`LAG_WAIT`]; without one the RPO is unknown, and the
//! drill's verdict says so.
//!
//! Cleanup ([`remove`]) deletes the instance only when it carries this
//! drill's run tag, and proves it by reading until the instance is gone.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::LagRecord;
use super::drill_copy::{self, LAG_WAIT, first_datapoint};
use super::drill_names;
use super::leftovers::{Drill, Drilled, Left, Look, keep};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{CloudError, Clouds, DbRole, ReplicaPlacement};
use crate::journal::{CleanupResult, Temp};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase, RunMode};

/// Shadow one database resource in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillDatabase {
    /// Plan resource id.
    pub resource: String,
    /// The home primary's instance id.
    pub source: String,
    /// The home region.
    pub source_region: String,
    /// The real replica in the target (read for placement, never changed).
    pub replica: String,
    /// Target region.
    pub region: String,
}

/// What a drill's database step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillDatabaseOutput {
    /// The temporary instance's id.
    pub instance: String,
    /// Target region.
    pub region: String,
    /// The home primary it replicated from.
    pub source: String,
    /// The home region.
    pub source_region: String,
    /// The real replica, not touched.
    pub replica_untouched: String,
    /// Set when an earlier attempt had promoted it already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_promoted: Option<bool>,
    /// The temporary replica's lag at promotion (the drill's RPO), when read.
    #[serde(flatten)]
    pub lag: LagRecord,
    /// When the promotion was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// When it was seen a writable primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_at: Option<DateTime<Utc>>,
    /// Its endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Its port.
    #[serde(default)]
    pub port: Option<i32>,
}

impl StepOutput for DrillDatabaseOutput {
    const KIND: KindName = KindName::DrillDatabase;
}

/// Part of the drill's recovery, and where its RPO is read. Not
/// irreversible: what it promotes is the drill's own copy.
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| DrillDatabaseOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "rds:DescribeDBInstances",
            "rds:CreateDBInstanceReadReplica",
            "rds:PromoteReadReplica",
        ],
        waits: &["rds:CreateDBInstanceReadReplica", "rds:PromoteReadReplica"],
        polls: Some("rds:DescribeDBInstances"),
    },
    ..Traits::RECOVERY
};

fn rpo(
    resource: &str,
    out: Option<&Value>,
    _gate_lag: Option<f64>,
    _origin: DateTime<Utc>,
    _origin_label: &str,
) -> (Option<f64>, String) {
    let Some(out) = out.map(|o| DrillDatabaseOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the drill's temporary replica was not promoted)"),
        );
    };
    match out.lag.seconds() {
        Some(l) => (
            Some(l),
            format!(
                "{resource}: ReplicaLag of the drill's temporary replica {} at promotion ({} datapoints)",
                out.instance,
                out.lag.count()
            ),
        ),
        None => (
            None,
            format!(
                "{resource}: unknown ({})",
                out.lag
                    .note
                    .as_deref()
                    .unwrap_or("no ReplicaLag datapoint of the temporary replica")
            ),
        ),
    }
}

/// A shadow drill shadows every promote-replica database of the plan.
pub fn compile(b: &mut Builder<'_>) {
    if !matches!(
        b.mode,
        RunMode::Drill {
            depth: crate::steps::graph::DrillDepth::Shadow
        }
    ) {
        return;
    }
    let home = b.plan.home().to_string();
    let steps: Vec<DrillDatabase> = b
        .plan
        .spec
        .database
        .iter()
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .map(|d| DrillDatabase {
            resource: d.id.clone(),
            source: d.regions[&home].clone(),
            source_region: home.clone(),
            replica: d.regions[b.target].clone(),
            region: b.target.to_string(),
        })
        .collect();
    for s in steps {
        let description = format!(
            "create a temporary replica of {} ({}) in {}, read its lag, promote it and check it is writable ({} is not touched)",
            s.source, s.source_region, s.region, s.replica
        );
        b.add(
            StepKind::DrillDatabase(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Database),
            vec![s.resource],
            description,
        );
    }
}

impl DrillDatabase {
    /// The temporary instance's id in this run.
    pub fn temp_id(&self, run_id: &str) -> String {
        drill_names::temp_database_id(run_id, &self.replica)
    }

    /// Creates the temporary replica unless it exists (a re-run), then
    /// waits until it is available. Returns whether it is already promoted.
    async fn ensure_replica(&self, cx: &Cx<'_>, temp: &str) -> Result<bool, StepFailure> {
        let t = self.region.as_str();
        let existing = cx.clouds.database.describe_instance(t, temp).await?;
        match existing {
            Some(i) if i.tags.get(drill_names::RUN_TAG).map(String::as_str) != Some(cx.run_id) => {
                return Err(StepFailure::state(
                    format!("database {temp} in {t} exists but is not this drill's"),
                    "remove it (`drctl drill sweep`), then start a new drill",
                    temp,
                    t,
                ));
            }
            Some(i) if i.role == DbRole::Primary => return Ok(true),
            Some(_) => {}
            None => {
                let source = cx
                    .clouds
                    .database
                    .describe_instance(&self.source_region, &self.source)
                    .await
                    .map_err(|e| {
                        StepFailure::state(
                            format!(
                                "a shadow drill copies the home primary {} and cannot read it: {}",
                                self.source,
                                e.message
                            ),
                            "a drill needs the home region to answer; during an outage run `drctl failover`",
                            &self.source,
                            &self.source_region,
                        )
                    })?
                    .ok_or_else(|| {
                        StepFailure::state(
                            format!(
                                "home primary {} does not exist in {}",
                                self.source, self.source_region
                            ),
                            "fix the database ids in the plan (drctl plan validate)",
                            &self.source,
                            &self.source_region,
                        )
                    })?;
                // Placed like the real replica (network, key, class), one zone.
                let real = cx
                    .clouds
                    .database
                    .describe_instance(t, &self.replica)
                    .await?;
                let mut placement = ReplicaPlacement::like(real.as_ref(), &source);
                placement.multi_az = Some(false);
                placement.tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
                cx.fenced(&format!("rds:CreateDBInstanceReadReplica {temp}"), t)
                    .await?;
                cx.clouds
                    .database
                    .create_replica(t, temp, &source.arn, &placement)
                    .await?;
            }
        }
        wait_for(
            cx,
            &format!("temporary replica {temp} ({t}) to be available"),
            || async {
                let i = cx.clouds.database.describe_instance(t, temp).await?;
                Ok(i.filter(|i| i.is_available()).map(|_| ()))
            },
        )
        .await?;
        Ok(false)
    }

    /// Waits (up to [`LAG_WAIT`], within the step's budget) for a first
    /// `ReplicaLag` datapoint of the temporary replica.
    async fn read_lag(&self, cx: &Cx<'_>, temp: &str, out: &mut DrillDatabaseOutput) {
        let t = self.region.as_str();
        let what = format!("a ReplicaLag datapoint of {temp} ({t})");
        let read = first_datapoint(cx, &what, || {
            cx.clouds.metrics.replica_lag(t, temp, cx.lag_window)
        })
        .await;
        match read {
            Ok(Some(r)) => out.lag = LagRecord::read_now(&r, None),
            Ok(None) => {
                out.lag.datapoints = Some(0);
                out.lag.note = Some(format!(
                    "no ReplicaLag datapoint of the temporary replica {temp} within {} of it being available",
                    crate::plan::duration::format_duration(LAG_WAIT)
                ));
            }
            Err(e) => {
                out.lag.note = Some(format!(
                    "ReplicaLag of {temp} could not be read: {}",
                    e.message
                ));
            }
        }
    }
}

#[async_trait]
impl Action for DrillDatabase {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let what = format!("database {}", self.source);
        out.push(
            match cx
                .clouds
                .database
                .describe_instance(&self.source_region, &self.source)
                .await
            {
                Ok(None) => Finding::missing(&what, &self.source_region),
                Ok(Some(i)) if i.is_available() => Finding::ok(
                    &what,
                    &self.source_region,
                    "available (the drill replicates from it)",
                ),
                Ok(Some(i)) => Finding::blocks(
                    &what,
                    &self.source_region,
                    i.status.clone(),
                    "a drill replicates from the home primary, which is not available",
                ),
                Err(e) => Finding::unreadable(&what, &self.source_region, &e),
            },
        );
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let temp = self.temp_id(cx.run_id);
        let source = cx
            .clouds
            .database
            .describe_instance(&self.source_region, &self.source)
            .await?;
        let current = match &source {
            Some(s) => format!("source {} {} ({})", s.id, s.status, self.source_region),
            None => format!("source {} missing", self.source),
        };
        Ok(vec![
            Planned {
                call: "rds:CreateDBInstanceReadReplica".into(),
                resource: temp.clone(),
                region: self.region.clone(),
                current,
                desired: format!(
                    "temporary replica of {}, tagged {}",
                    self.source,
                    drill_names::RUN_TAG
                ),
                change: true,
            },
            Planned {
                call: "cloudwatch:GetMetricData".into(),
                resource: temp.clone(),
                region: self.region.clone(),
                current: "new replica".into(),
                desired: "ReplicaLag read (the drill's RPO)".into(),
                change: false,
            },
            Planned {
                call: "rds:PromoteReadReplica".into(),
                resource: temp.clone(),
                region: self.region.clone(),
                current: "replica".into(),
                desired: "writable primary (the drill's copy; deleted at cleanup)".into(),
                change: true,
            },
            Planned {
                call: "rds:DeleteDBInstance".into(),
                resource: temp,
                region: self.region.clone(),
                current: "temporary primary".into(),
                desired: "gone (cleanup, proven by a read)".into(),
                change: true,
            },
        ])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let t = self.region.as_str();
        let temp = self.temp_id(cx.run_id);
        let mut out = DrillDatabaseOutput {
            instance: temp.clone(),
            region: t.to_string(),
            source: self.source.clone(),
            source_region: self.source_region.clone(),
            replica_untouched: self.replica.clone(),
            ..DrillDatabaseOutput::default()
        };
        let promoted = self.ensure_replica(cx, &temp).await?;
        if promoted {
            out.already_promoted = Some(true);
            out.lag.note =
                Some("promoted by an earlier attempt whose outputs were not journaled".into());
        } else {
            self.read_lag(cx, &temp, &mut out).await;
            cx.fenced(&format!("rds:PromoteReadReplica of {temp}"), t)
                .await?;
            cx.clouds.database.promote_replica(t, &temp).await?;
            out.promoted_at = Some(Utc::now());
        }
        let done = wait_for(
            cx,
            &format!("temporary database {temp} ({t}) to be a writable primary"),
            || async {
                let i = cx.clouds.database.describe_instance(t, &temp).await?;
                Ok(i.filter(|i| i.role == DbRole::Primary && i.is_available()))
            },
        )
        .await?;
        out.writable_at = Some(Utc::now());
        out.endpoint = done.endpoint;
        out.port = done.port;
        out.to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        vec![Temp::Database {
            region: self.region.clone(),
            id: self.temp_id(run_id),
        }]
    }
}

#[async_trait]
impl Drilled for DrillDatabase {
    /// Temporary instances in the target, by their drill tags, named as
    /// this step names its copy of the target's replica.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let listed = look.rds_instances(&self.region).await;
        let temp = |id: &str| Temp::Database {
            region: self.region.clone(),
            id: id.to_string(),
        };
        let each = listed
            .iter()
            .map(|i| (Drill::of_tags(&i.tags), &*i.id, temp(&i.id)));
        keep(each, |id, run| self.temp_id(run) == id)
    }
}

/// Deletes a drill's temporary instance and reads until it is gone.
/// `expected_run`: the drill that must have tagged it (`None`: any drill,
/// for a sweep). An instance without the drill's tag is never touched.
pub async fn remove(
    clouds: &Clouds,
    region: &str,
    id: &str,
    expected_run: Option<&str>,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let read = || async move {
        let i = clouds.database.describe_instance(region, id).await?;
        Ok(i.map(|i| drill_copy::Seen::of(&i.tags, i.status)))
    };
    let delete = || clouds.database.delete_instance(region, id);
    let copy = drill_copy::Copy {
        id,
        region,
        read_call: "DescribeDBInstances",
        deleted: "deleted",
    };
    drill_copy::remove_tagged(copy, expected_run, (read, delete), poll, deadline).await
}
