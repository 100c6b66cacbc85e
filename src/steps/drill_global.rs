//! `drill-global`: a shadow drill's Aurora global database. A switchover
//! moves production's writer (users move twice, and back), so a shadow drill
//! rehearses the target's side on a **copy** instead: the global cluster's
//! secondary in the target region is cloned (`RestoreDBClusterToPointInTime`,
//! copy-on-write, latest restorable time) into a standalone drill cluster,
//! tagged with the drill's run id, owner and expiry; a writer instance is
//! added to it (Aurora clones a volume, never its instances); the step ends
//! when the copy is available with its writer available, and outputs its
//! writer endpoint (what a drill record that follows the database points
//! at). No member of the global cluster is changed: the secondary is only
//! read, and a clone of it is not one of its global cluster's members.
//!
//! The drill's measured RPO is the secondary's lag behind the writer read
//! right before the clone (`AuroraGlobalDBRPOLag`, else
//! `AuroraGlobalDBReplicationLag`): the copy holds what the secondary had,
//! so what a failover to that secondary would have lost is what the copy
//! lacks. The step waits up to [`LAG_WAIT`] for a datapoint; without one
//! the RPO is unknown and the drill's verdict says so.
//!
//! The copy is named from the run id alone ([`drill_names::temp_cluster_id`])
//! and journaled before the step starts ([`Action::creates`]), so a crash
//! between the clone and its answer still leaves it named for cleanup;
//! cleanup ([`remove`]) and `drctl drill sweep` (by its tags, from any
//! machine) delete it with its instance, only when it carries the drill's
//! run tag.

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
use crate::cloud::{CloudError, Clouds, DbCluster, GlobalCluster};
use crate::journal::{CleanupResult, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// The class of the copy's writer instance: the smallest memory-optimized
/// class Aurora global databases take for both engines. The drill measures
/// how long the target's side takes to serve from a copy of its data, not
/// the copy's performance, and the plan names no class.
pub const WRITER_CLASS: &str = "db.r6g.large";

/// Shadow one global database in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillGlobal {
    /// Plan resource id.
    pub resource: String,
    /// The global cluster (read, never changed).
    pub global_cluster: String,
    /// The global cluster's member in the target: the secondary cloned
    /// (read, never changed).
    pub member: String,
    /// Target region.
    pub region: String,
}

/// What a drill's global database step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillGlobalOutput {
    /// The drill's copy (a standalone cluster).
    pub cluster: String,
    /// Its writer instance.
    pub instance: String,
    /// Target region.
    pub region: String,
    /// The secondary it was cloned from, not touched.
    pub source: String,
    /// The global cluster, not touched.
    pub global_cluster: String,
    /// Set when an earlier attempt had cloned it already (the lag read
    /// before that clone was not journaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_cloned: Option<bool>,
    /// The secondary's lag right before the clone (the drill's RPO), when read.
    #[serde(flatten)]
    pub lag: LagRecord,
    /// When the clone was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloned_at: Option<DateTime<Utc>>,
    /// When the copy was seen available with its writer available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_at: Option<DateTime<Utc>>,
    /// The copy's writer endpoint (its cluster endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl StepOutput for DrillGlobalOutput {
    const KIND: KindName = KindName::DrillGlobal;
}

/// Part of the drill's recovery, and where its RPO is read. Not
/// irreversible: what it makes is the drill's own copy.
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| DrillGlobalOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "rds:DescribeDBClusters",
            "rds:DescribeGlobalClusters",
            "cloudwatch:GetMetricData",
            "rds:RestoreDBClusterToPointInTime",
            "rds:DescribeDBInstances",
            "rds:CreateDBInstance",
        ],
        waits: &["rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance"],
        polls: Some("rds:DescribeDBClusters"),
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
    let Some(out) = out.map(|o| DrillGlobalOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the drill's copy of the secondary was not made)"),
        );
    };
    match out.lag.seconds() {
        Some(l) => (
            Some(l),
            format!(
                "{resource}: Aurora global lag (AuroraGlobalDBRPOLag, else AuroraGlobalDBReplicationLag) of the secondary {} ({}) right before it was cloned into the drill's copy {} ({} datapoints)",
                out.source,
                out.region,
                out.cluster,
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
                    .unwrap_or("no Aurora global lag datapoint of the secondary")
            ),
        ),
    }
}

/// A shadow drill shadows every global database of the plan that has a
/// member in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !matches!(
        b.mode,
        RunMode::Drill {
            depth: DrillDepth::Shadow
        }
    ) {
        return;
    }
    let steps: Vec<DrillGlobal> = (b.plan.spec.global_database.iter())
        .filter_map(|g| {
            Some(DrillGlobal {
                resource: g.id.clone(),
                global_cluster: g.global_cluster.clone(),
                member: g.regions.get(b.target)?.clone(),
                region: b.target.to_string(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "clone {} ({}, a secondary of {}) into a drill copy, read its lag, add a writer and check the copy is writable ({} and every member of {} are not touched)",
            s.member, s.region, s.global_cluster, s.member, s.global_cluster
        );
        b.add(
            StepKind::DrillGlobal(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::GlobalDatabase),
            vec![s.resource],
            description,
        );
    }
}

/// Why the member `member` of global cluster `global` in `region` cannot
/// be cloned by a drill, as read (`cluster`: the member's own read, `g`: the
/// global cluster's through `region`); `None` when it can: it exists, is a
/// secondary of `global`, and is available.
pub fn source_problem(
    member: &str,
    region: &str,
    global: &str,
    cluster: Option<&DbCluster>,
    g: Option<&GlobalCluster>,
) -> Option<String> {
    let Some(cluster) = cluster else {
        return Some(format!(
            "member cluster {member} of global cluster {global} does not exist in {region}"
        ));
    };
    let Some(g) = g else {
        return Some(format!(
            "global cluster {global} does not exist (read through {region}), so {member} in {region} is no secondary of it"
        ));
    };
    match g.member(region, member) {
        None => Some(format!(
            "cluster {member} in {region} is not a member of global cluster {global} (detached?): a shadow drill clones a secondary of it"
        )),
        Some(m) if m.writer => Some(format!(
            "cluster {member} in {region} is the writer of global cluster {global}: a shadow drill clones a secondary, and the target's member is the writer"
        )),
        Some(_) if !cluster.is_available() => Some(format!(
            "cluster {member} in {region} (a secondary of {global}) is {}, not available",
            cluster.status
        )),
        Some(_) => None,
    }
}

/// What to do about a source that cannot be cloned.
const SOURCE_HINT: &str = "drill to a region where the global cluster has an available secondary (`drctl status` shows each member's role), or fix the member cluster ids in the plan";

impl DrillGlobal {
    /// The drill copy's cluster id in this run.
    pub fn copy_id(&self, run_id: &str) -> String {
        drill_names::temp_cluster_id(run_id, &self.member)
    }

    /// The drill copy's writer instance id in this run.
    pub fn writer_id(&self, run_id: &str) -> String {
        drill_names::temp_writer_id(run_id, &self.member)
    }

    /// Reads the member and its global cluster in the target (both only
    /// read), and why they cannot be cloned.
    async fn read_source(&self, cx: &Cx<'_>) -> Result<Option<String>, CloudError> {
        let t = self.region.as_str();
        let cluster = cx.clouds.aurora.describe_cluster(t, &self.member).await?;
        let g = match &cluster {
            Some(_) => {
                cx.clouds
                    .aurora
                    .describe_global(t, &self.global_cluster)
                    .await?
            }
            None => None,
        };
        Ok(source_problem(
            &self.member,
            t,
            &self.global_cluster,
            cluster.as_ref(),
            g.as_ref(),
        ))
    }

    /// Reads the secondary's lag, waiting (up to [`LAG_WAIT`]) for a
    /// datapoint: the drill's RPO.
    async fn read_lag(&self, cx: &Cx<'_>, out: &mut DrillGlobalOutput) {
        let t = self.region.as_str();
        let what = format!("an Aurora global lag datapoint of {} ({t})", self.member);
        let read = first_datapoint(cx, &what, || {
            cx.clouds
                .metrics
                .cluster_lag(t, &self.member, cx.lag_window)
        })
        .await;
        match read {
            Ok(Some(r)) => out.lag = LagRecord::read_now(&r, None),
            Ok(None) => {
                out.lag.datapoints = Some(0);
                out.lag.note = Some(format!(
                    "no AuroraGlobalDBRPOLag or AuroraGlobalDBReplicationLag datapoint of the secondary {} within {}",
                    self.member,
                    crate::plan::duration::format_duration(LAG_WAIT)
                ));
            }
            Err(e) => {
                out.lag.note = Some(format!(
                    "the Aurora global lag of {} could not be read: {}",
                    self.member, e.message
                ));
            }
        }
    }

    /// The copy as read, refused when it is not this drill's.
    async fn read_copy(&self, cx: &Cx<'_>, copy: &str) -> Result<Option<DbCluster>, StepFailure> {
        let t = self.region.as_str();
        let c = cx.clouds.aurora.describe_cluster(t, copy).await?;
        match c {
            Some(c) if c.tags.get(drill_names::RUN_TAG).map(String::as_str) != Some(cx.run_id) => {
                Err(StepFailure::state(
                    format!("cluster {copy} in {t} exists but is not this drill's"),
                    "remove it (`drctl drill sweep`), then start a new drill",
                    copy,
                    t,
                ))
            }
            c => Ok(c),
        }
    }

    /// Clones the secondary into the copy unless it exists (a re-run, after
    /// an attempt whose outputs were lost), reading the lag right before.
    async fn ensure_copy(
        &self,
        cx: &Cx<'_>,
        copy: &str,
        out: &mut DrillGlobalOutput,
    ) -> Result<(), StepFailure> {
        let t = self.region.as_str();
        if self.read_copy(cx, copy).await?.is_some() {
            out.already_cloned = Some(true);
            out.lag.note = Some(
                "cloned by an earlier attempt whose outputs were not journaled: the lag read before that clone is lost"
                    .into(),
            );
            return Ok(());
        }
        if let Some(why) = self.read_source(cx).await? {
            return Err(StepFailure::state(why, SOURCE_HINT, &self.member, t));
        }
        self.read_lag(cx, out).await;
        let tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
        cx.fenced(&format!("rds:RestoreDBClusterToPointInTime {copy}"), t)
            .await?;
        cx.clouds
            .aurora
            .clone_cluster(t, &self.member, copy, &tags)
            .await?;
        out.cloned_at = Some(Utc::now());
        Ok(())
    }

    /// Waits for the copy available (and standalone: a copy that joined
    /// the global cluster would be read-only, and would make a member of
    /// it), then adds its writer unless it has it.
    async fn ensure_writer(
        &self,
        cx: &Cx<'_>,
        copy: &str,
        writer: &str,
    ) -> Result<(), StepFailure> {
        let t = self.region.as_str();
        let c = wait_for(
            cx,
            &format!("the drill copy {copy} ({t}) to be available"),
            || async { Ok(self.read_copy(cx, copy).await?.filter(|c| c.is_available())) },
        )
        .await?;
        if let Some(g) = &c.global_cluster {
            return Err(StepFailure::state(
                format!(
                    "the drill copy {copy} in {t} reports membership of global cluster {g}: a clone must be a standalone cluster"
                ),
                "the provider (or emulator) joined the clone to its source's global cluster; cleanup removes the copy, check the global cluster's members",
                copy,
                t,
            ));
        }
        match cx.clouds.database.describe_instance(t, writer).await? {
            Some(i) if i.tags.get(drill_names::RUN_TAG).map(String::as_str) != Some(cx.run_id) => {
                Err(StepFailure::state(
                    format!("database {writer} in {t} exists but is not this drill's"),
                    "remove it (`drctl drill sweep`), then start a new drill",
                    writer,
                    t,
                ))
            }
            Some(_) => Ok(()),
            None => {
                let tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
                cx.fenced(&format!("rds:CreateDBInstance {writer}"), t)
                    .await?;
                cx.clouds
                    .aurora
                    .add_writer(t, copy, writer, &c.engine, WRITER_CLASS, &tags)
                    .await?;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Action for DrillGlobal {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("cluster {}", self.member);
        vec![match self.read_source(cx).await {
            Ok(None) => Finding::ok(
                &what,
                &self.region,
                format!(
                    "available, a secondary of {} (the drill clones it)",
                    self.global_cluster
                ),
            ),
            Ok(Some(why)) => Finding::blocks(&what, &self.region, "not a secondary to clone", why),
            Err(e) => Finding::unreadable(&what, &self.region, &e),
        }]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let copy = self.copy_id(cx.run_id);
        let writer = self.writer_id(cx.run_id);
        let current = match self.read_source(cx).await? {
            None => format!("secondary {} available ({})", self.member, self.region),
            Some(why) => why,
        };
        let planned = |call: &str, resource: &str, current: String, desired: String| Planned {
            call: call.into(),
            resource: resource.into(),
            region: self.region.clone(),
            current,
            desired,
            change: true,
        };
        Ok(vec![
            Planned {
                change: false,
                ..planned(
                    "cloudwatch:GetMetricData",
                    &self.member,
                    "secondary".into(),
                    "AuroraGlobalDBRPOLag read (the drill's RPO)".into(),
                )
            },
            planned(
                "rds:RestoreDBClusterToPointInTime",
                &copy,
                current,
                format!(
                    "copy-on-write clone of {}, standalone, tagged {}",
                    self.member,
                    drill_names::RUN_TAG
                ),
            ),
            planned(
                "rds:CreateDBInstance",
                &writer,
                "no instance".into(),
                format!("writer of {copy} ({WRITER_CLASS}), available"),
            ),
            planned(
                "rds:DeleteDBCluster",
                &copy,
                "the drill's copy".into(),
                "gone with its writer (cleanup, proven by a read)".into(),
            ),
        ])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let t = self.region.as_str();
        let copy = self.copy_id(cx.run_id);
        let writer = self.writer_id(cx.run_id);
        let mut out = DrillGlobalOutput {
            cluster: copy.clone(),
            instance: writer.clone(),
            region: t.to_string(),
            source: self.member.clone(),
            global_cluster: self.global_cluster.clone(),
            ..DrillGlobalOutput::default()
        };
        self.ensure_copy(cx, &copy, &mut out).await?;
        self.ensure_writer(cx, &copy, &writer).await?;
        let done = wait_for(
            cx,
            &format!("the drill copy {copy} ({t}) to be writable (its writer {writer} available)"),
            || async {
                let i = cx.clouds.database.describe_instance(t, &writer).await?;
                if !i.is_some_and(|i| i.is_available()) {
                    return Ok(None);
                }
                Ok(self
                    .read_copy(cx, &copy)
                    .await?
                    .filter(|c| c.is_available()))
            },
        )
        .await?;
        out.writable_at = Some(Utc::now());
        out.endpoint = done.endpoint;
        out.to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        vec![Temp::Cluster {
            region: self.region.clone(),
            id: self.copy_id(run_id),
        }]
    }
}

#[async_trait]
impl Drilled for DrillGlobal {
    /// Drill copies in the target, by their drill tags, named as this
    /// step names its copy of the target's member.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let listed = look.aurora_clusters(&self.region).await;
        let temp = |id: &str| Temp::Cluster {
            region: self.region.clone(),
            id: id.to_string(),
        };
        let each = listed
            .iter()
            .map(|c| (Drill::of_tags(&c.tags), &*c.id, temp(&c.id)));
        keep(each, |id, run| self.copy_id(run) == id)
    }
}

/// Deletes a drill's copy with its instances and reads until it is gone.
/// `expected_run`: the drill that must have tagged it (`None`: any drill,
/// for a sweep). A cluster without the drill's tag is never touched.
pub async fn remove(
    clouds: &Clouds,
    region: &str,
    id: &str,
    expected_run: Option<&str>,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let read = || async move {
        let c = clouds.aurora.describe_cluster(region, id).await?;
        Ok(c.map(|c| drill_copy::Seen::of(&c.tags, c.status)))
    };
    let delete = || clouds.aurora.delete_cluster(region, id);
    let copy = drill_copy::Copy {
        id,
        region,
        read_call: "DescribeDBClusters",
        deleted: "deleted with its instances",
    };
    drill_copy::remove_tagged(copy, expected_run, (read, delete), poll, deadline).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::metered::Metered;

    const RUN: &str = "20261125T040000Z-orders-g1a2";
    const MEMBERS: [(&str, &str); 3] = [
        ("us-west-2", "orders-usw2"),
        ("us-east-1", "orders-use1"),
        ("eu-west-1", "orders-euw1"),
    ];

    fn orders() -> crate::plan::Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "orders")
            .expect("the reference orders plan")
    }

    /// The reference orders world: the writer in us-west-2, secondaries
    /// in us-east-1 (2 s behind) and eu-west-1.
    fn seeded(fake: &FakeCloud) {
        fake.add_global("orders-global", &MEMBERS);
        fake.set_lag("us-east-1", "orders-use1", &[2.0]);
        fake.set_lag("eu-west-1", "orders-euw1", &[1.0]);
    }

    /// Production as a drill must leave it: the global cluster (members,
    /// writer, status) and each member cluster.
    fn production(fake: &FakeCloud) -> String {
        let s = fake.state();
        let clusters: Vec<&DbCluster> = (s.clusters.values())
            .filter(|c| !c.id.starts_with("drill-"))
            .collect();
        format!("{:?}\n{clusters:?}", s.globals)
    }

    /// Every copy and instance a drill made that is still there.
    fn drill_leftovers(fake: &FakeCloud) -> Vec<String> {
        let s = fake.state();
        (s.clusters.keys().chain(s.databases.keys()))
            .filter(|(_, id)| id.starts_with("drill-"))
            .map(|(r, id)| format!("{r}/{id}"))
            .collect()
    }

    /// The drill's `drill-global` step to `target`.
    fn step(target: &str) -> (crate::plan::Plan, crate::steps::graph::Graph, DrillGlobal) {
        let plan = orders();
        let mode = RunMode::Drill {
            depth: DrillDepth::Shadow,
        };
        let g = crate::steps::graph::compile_mode(&plan, target, &mode).unwrap();
        let s = g
            .steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::DrillGlobal(d) => Some(d.clone()),
                _ => None,
            })
            .expect("a drill-global step");
        (plan, g, s)
    }

    fn cx<'a>(
        clouds: &'a Clouds,
        plan: &'a crate::plan::Plan,
        g: &'a crate::steps::graph::Graph,
        outputs: &'a BTreeMap<String, Value>,
        target: &'a str,
    ) -> Cx<'a> {
        Cx {
            run_id: RUN,
            deadline: Instant::now() + Duration::from_secs(3600),
            poll: (Duration::from_secs(5), Duration::from_secs(30)),
            ..Cx::for_test(clouds, plan, target, outputs, &g.steps)
        }
    }

    /// Runs the step to `target` against `clouds`.
    async fn run_step(clouds: &Clouds, target: &str) -> Result<DrillGlobalOutput, StepFailure> {
        let (plan, g, s) = step(target);
        let outputs = BTreeMap::new();
        let out = s.run(&cx(clouds, &plan, &g, &outputs, target)).await?;
        Ok(serde_json::from_value(out).expect("the step's outputs"))
    }

    fn poll() -> (Duration, Duration) {
        (Duration::from_secs(1), Duration::from_secs(10))
    }

    /// In a timed world (the clone and the writer take the model's time,
    /// and Aurora refuses a writer before the clone is available), the step
    /// reads the secondary's lag, clones it once into a standalone copy,
    /// adds its writer once, and outputs the copy's writer endpoint and the
    /// lag as the drill's RPO; cleanup deletes the copy and its writer.
    /// No member of the global cluster is touched.
    #[tokio::test(start_paused = true)]
    async fn a_drill_clones_the_secondary_into_a_writable_copy_and_cleanup_removes_it() {
        let fake = FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 11);
        seeded(&fake);
        let before = production(&fake);
        let (clouds, log) = Metered::wrap(fake.clouds());
        let out = run_step(&clouds, "us-east-1")
            .await
            .expect("the step succeeds");
        let copy = drill_names::temp_cluster_id(RUN, "orders-use1");
        let writer = drill_names::temp_writer_id(RUN, "orders-use1");
        assert_eq!(
            (out.cluster.as_str(), out.instance.as_str()),
            (copy.as_str(), writer.as_str())
        );
        assert_eq!(out.source, "orders-use1");
        let lag = out.lag.seconds();
        assert_eq!((lag, out.lag.datapoints), (Some(2.0), Some(1)));
        assert!(out.cloned_at.is_some() && out.writable_at.is_some());
        let c = fake.state().clusters[&("us-east-1".to_string(), copy.clone())].clone();
        assert_eq!(out.endpoint, c.endpoint);
        assert!(c.endpoint.is_some());
        assert_eq!(c.global_cluster, None, "the copy is standalone");
        assert_eq!(
            c.tags.get(drill_names::RUN_TAG).map(String::as_str),
            Some(RUN)
        );
        let w = fake.state().databases[&("us-east-1".to_string(), writer.clone())].clone();
        assert_eq!(
            (
                w.status.as_str(),
                w.instance_class.as_deref(),
                w.engine.as_str()
            ),
            ("available", Some(WRITER_CLASS), "aurora-postgresql")
        );
        assert_eq!(
            fake.state().cluster_instances[&("us-east-1".to_string(), writer.clone())],
            copy
        );
        // Both took the model's time (the writer only once the clone was
        // available: the fake refuses it before, as Aurora does).
        let drawn: Vec<String> = (fake.timing().unwrap().drawn().into_iter())
            .map(|(k, _)| k)
            .collect();
        assert!(
            drawn.contains(&format!("cluster:us-east-1/{copy}"))
                && drawn.contains(&format!("db:us-east-1/{writer}")),
            "{drawn:?}"
        );
        let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
        let n = |l: &str| labels.iter().filter(|x| **x == l).count();
        assert_eq!(n("rds:RestoreDBClusterToPointInTime"), 1, "{labels:?}");
        assert_eq!(n("rds:CreateDBInstance"), 1, "{labels:?}");
        // The lag was read before the clone.
        let lag_at = labels.iter().position(|l| *l == "cloudwatch:GetMetricData");
        let clone_at = labels
            .iter()
            .position(|l| *l == "rds:RestoreDBClusterToPointInTime");
        assert!(lag_at < clone_at, "{labels:?}");
        assert_eq!(production(&fake), before, "production changed");
        // The RPO the drill measures, and its basis.
        let v = serde_json::to_value(&out).unwrap();
        let (secs, basis) = rpo("orders-db", Some(&v), None, Utc::now(), "start");
        assert_eq!(secs, Some(2.0));
        assert!(
            basis.contains("orders-use1") && basis.contains(&copy),
            "{basis}"
        );

        let (result, detail) = remove(
            &clouds,
            "us-east-1",
            &copy,
            Some(RUN),
            poll(),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(result, CleanupResult::Removed, "{detail}");
        assert!(
            drill_leftovers(&fake).is_empty(),
            "{:?}",
            drill_leftovers(&fake)
        );
        assert_eq!(production(&fake), before, "production changed");
        let writes = fake.state().writes.clone();
        assert!(
            writes.iter().all(|w| w.contains(" drill-")),
            "only the drill's copy was written: {writes:?}"
        );
    }

    /// A crash after the copy is journaled (`creates`, before the step
    /// starts) but before the clone: cleanup finds nothing and says so,
    /// production is as it was, and a new attempt clones as the first would.
    #[tokio::test(start_paused = true)]
    async fn a_crash_between_the_journaled_copy_and_the_clone_leaves_nothing_to_remove() {
        let fake = FakeCloud::new();
        seeded(&fake);
        let before = production(&fake);
        let clouds = fake.clouds();
        let (_, _, s) = step("us-east-1");
        let temps = s.creates(RUN);
        let copy = drill_names::temp_cluster_id(RUN, "orders-use1");
        assert_eq!(
            temps,
            [Temp::Cluster {
                region: "us-east-1".into(),
                id: copy.clone()
            }]
        );
        let (result, detail) = remove(
            &clouds,
            "us-east-1",
            &copy,
            Some(RUN),
            poll(),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(result, CleanupResult::Absent, "{detail}");
        assert!(detail.contains(&copy), "{detail}");
        assert!(fake.state().writes.is_empty());
        assert_eq!(production(&fake), before);
        let out = run_step(&clouds, "us-east-1")
            .await
            .expect("a new attempt clones");
        assert_eq!(out.already_cloned, None);
        assert_eq!(out.lag.seconds(), Some(2.0));
    }

    /// An attempt whose outputs were lost (a crash after the clone): the
    /// step runs again, finds its own copy and writer, sends nothing twice
    /// and says the lag read before that clone is lost (the RPO is then
    /// unknown, never 0).
    #[tokio::test(start_paused = true)]
    async fn a_rerun_finds_its_copy_and_clones_nothing_again() {
        let fake = FakeCloud::new();
        seeded(&fake);
        let clouds = fake.clouds();
        let first = run_step(&clouds, "us-east-1").await.unwrap();
        let writes = fake.state().writes.clone();
        assert_eq!(writes.len(), 2, "{writes:?}");
        let again = run_step(&clouds, "us-east-1").await.unwrap();
        assert_eq!(fake.state().writes, writes, "nothing sent again");
        assert_eq!(again.already_cloned, Some(true));
        assert_eq!(again.endpoint, first.endpoint);
        let v = serde_json::to_value(&again).unwrap();
        let (secs, basis) = rpo("orders-db", Some(&v), None, Utc::now(), "start");
        assert_eq!(secs, None);
        assert!(basis.contains("earlier attempt"), "{basis}");

        // A copy under this run's name that another drill made is refused.
        let copy = drill_names::temp_cluster_id(RUN, "orders-use1");
        fake.state()
            .clusters
            .get_mut(&("us-east-1".to_string(), copy.clone()))
            .unwrap()
            .tags
            .insert(drill_names::RUN_TAG.into(), "another-run".into());
        let e = run_step(&clouds, "us-east-1").await.unwrap_err();
        assert!(
            e.to_string().contains(&copy) && e.to_string().contains("not this drill's"),
            "{e}"
        );
        let (result, _) = remove(
            &clouds,
            "us-east-1",
            &copy,
            Some(RUN),
            poll(),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(
            result,
            CleanupResult::NotOurs,
            "another drill's copy is left alone"
        );
    }

    /// The target's member is the writer (the global cluster's writer is
    /// not where the plan's home is), or missing: the step and preflight
    /// refuse, naming the cluster and the region, and nothing is sent.
    #[tokio::test(start_paused = true)]
    async fn a_writer_or_missing_member_is_refused_by_name() {
        let fake = FakeCloud::new();
        // The writer moved to us-east-1 (after a failover).
        fake.add_global(
            "orders-global",
            &[("us-east-1", "orders-use1"), ("us-west-2", "orders-usw2")],
        );
        let clouds = fake.clouds();
        let e = run_step(&clouds, "us-east-1").await.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, StepFailure::State { .. })
                && text.contains("orders-use1")
                && text.contains("us-east-1")
                && text.contains("writer of global cluster orders-global"),
            "{text}"
        );
        assert!(e.hint().contains("secondary"), "{}", e.hint());
        let (plan, g, s) = step("us-east-1");
        let outputs = BTreeMap::new();
        let found = s
            .preflight(&cx(&clouds, &plan, &g, &outputs, "us-east-1"))
            .await;
        assert!(
            found[0]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("writer")),
            "{found:?}"
        );
        // eu-west-1 has no member at all in this world.
        let e = run_step(&clouds, "eu-west-1").await.unwrap_err();
        assert!(
            e.to_string().contains("orders-euw1")
                && e.to_string().contains("eu-west-1")
                && e.to_string().contains("does not exist"),
            "{e}"
        );
        assert!(fake.state().writes.is_empty(), "{:?}", fake.state().writes);
        assert!(drill_leftovers(&fake).is_empty());
    }

    #[test]
    fn a_secondary_is_cloned_anything_else_is_refused_with_why() {
        let fake = FakeCloud::new();
        seeded(&fake);
        let s = fake.state();
        let g = s.globals.get("orders-global");
        let member = |r: &str, id: &str| s.clusters.get(&(r.to_string(), id.to_string())).cloned();
        let use1 = member("us-east-1", "orders-use1");
        assert_eq!(
            source_problem(
                "orders-use1",
                "us-east-1",
                "orders-global",
                use1.as_ref(),
                g
            ),
            None
        );
        let usw2 = member("us-west-2", "orders-usw2");
        let why = source_problem(
            "orders-usw2",
            "us-west-2",
            "orders-global",
            usw2.as_ref(),
            g,
        )
        .unwrap();
        assert!(why.contains("is the writer"), "{why}");
        let why = source_problem("orders-use1", "us-east-1", "orders-global", None, g).unwrap();
        assert!(why.contains("does not exist in us-east-1"), "{why}");
        let why = source_problem(
            "orders-use1",
            "us-east-1",
            "orders-global",
            use1.as_ref(),
            None,
        )
        .unwrap();
        assert!(
            why.contains("global cluster orders-global does not exist"),
            "{why}"
        );
        let mut detached = use1.clone().unwrap();
        detached.id = "orders-other".into();
        let why = source_problem(
            "orders-other",
            "us-east-1",
            "orders-global",
            Some(&detached),
            g,
        )
        .unwrap();
        assert!(why.contains("not a member"), "{why}");
        let mut busy = use1.unwrap();
        busy.status = "modifying".into();
        let why =
            source_problem("orders-use1", "us-east-1", "orders-global", Some(&busy), g).unwrap();
        assert!(why.contains("is modifying, not available"), "{why}");
    }

    #[test]
    fn only_a_shadow_drill_clones_and_every_global_database_with_a_target_member() {
        let plan = orders();
        let drill = RunMode::Drill {
            depth: DrillDepth::Shadow,
        };
        let g = crate::steps::graph::compile_mode(&plan, "eu-west-1", &drill).unwrap();
        let ids: Vec<String> = (g.steps.iter())
            .filter(|s| matches!(s.kind, StepKind::DrillGlobal(_)))
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(ids, ["orders/drill-global:orders-db"]);
        let failover = crate::steps::graph::compile(&plan, "eu-west-1").unwrap();
        assert!(
            !failover
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::DrillGlobal(_)))
        );
    }
}
