//! `[[global_database]]`: an Aurora Global Database, named by its global
//! cluster and its member cluster in each region, failed over by moving
//! the global writer to the target's member (`switch-global`).
//!
//! Its copies are the member clusters: the writer is the primary, every
//! other member a replica of it. A secondary's RPO is read from the
//! `AuroraGlobalDBRPOLag` it publishes (else `AuroraGlobalDBReplicationLag`),
//! by the same gate and the same rule as an RDS replica's `ReplicaLag`; a
//! record that `follows` it points at the target member's writer endpoint.
//! A plan that would rather use the global writer endpoint (which AWS moves
//! with the writer) names it in a record that does not follow.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Copies, CopyState, Kind, Resource, RpoSource, Shown};
use crate::cloud::{CloudError, Clouds, DbRole, LagReading};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// A `[[global_database]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDatabaseSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The global cluster's identifier.
    pub global_cluster: String,
    /// Engine, for people (`aurora-postgresql`, `aurora-mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The member DB cluster's identifier per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Kind for GlobalDatabaseSpec {
    const KEYS: &'static [&'static str] = &["id", "global_cluster", "engine", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const SCALING: Option<&'static dyn super::scaling::Scaling> = None;
    const RESTORING: Option<&'static dyn super::restoring::Restoring> = None;
    const PROMOTING: Option<&'static dyn super::promoting::Promoting> = None;
}

/// Whether `name` is an RDS cluster identifier: 1 to 63 letters, digits or
/// hyphens, starting with a letter, no two hyphens in a row, not ending
/// with one.
pub fn valid_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !name.contains("--")
        && !name.ends_with('-')
}

impl Resource for GlobalDatabaseSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn follows(&self) -> Option<&str> {
        None
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "global_database {:<15} {} (member of {}{})",
            self.id,
            self.regions[region],
            self.global_cluster,
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        let hint =
            "1 to 63 letters, digits or hyphens, starting with a letter (as RDS names clusters)";
        if !valid_identifier(&self.global_cluster) {
            s.error(
                path!["global_cluster"],
                format!(
                    "global_database `{}`: `{}` is not a global cluster identifier",
                    self.id, self.global_cluster
                ),
                hint,
            );
        }
        for (region, id) in &self.regions {
            if !valid_identifier(id) {
                s.error(
                    path!["regions", region.as_str()],
                    format!(
                        "global_database `{}` names `{id}` in {region}, not a DB cluster identifier",
                        self.id
                    ),
                    hint,
                );
            }
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Data(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        if w.fake.state().globals.contains_key(&self.global_cluster) {
            return;
        }
        let home = w.home;
        let mut members: Vec<(&str, &str)> = (self.regions.get(home).into_iter())
            .map(|id| (home, id.as_str()))
            .collect();
        members.extend(
            (self.regions.iter())
                .filter(|(r, _)| *r != home)
                .map(|(r, id)| (r.as_str(), id.as_str())),
        );
        w.fake.add_global(&self.global_cluster, &members);
        for (region, id) in members.iter().skip(1) {
            w.fake.set_lag(region, id, &[1.0]);
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        vec![format!("global:{}", self.global_cluster)]
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        self.global_cluster.push_str(tag);
        for v in self.regions.values_mut() {
            v.push_str(tag);
        }
    }
}

#[async_trait]
impl Copies for GlobalDatabaseSpec {
    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        Some(self)
    }

    fn section(&self) -> &'static str {
        "global databases"
    }

    fn resource(&self) -> &str {
        &self.id
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.copy(region)?.to_string()))
    }

    fn dr_replica(&self) -> bool {
        false
    }

    fn read_call(&self) -> &'static str {
        "rds:DescribeDBClusters"
    }

    /// The member cluster, and its role as the global cluster (read in the
    /// same region) says: the writer, or a secondary of it; a cluster no
    /// longer in the global cluster (detached) is a primary of its own.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        let Some(c) = clouds.aurora.describe_cluster(region, id).await? else {
            return Ok(None);
        };
        let role = match &c.global_cluster {
            None => DbRole::Primary,
            Some(_) => {
                let g = clouds
                    .aurora
                    .describe_global(region, &self.global_cluster)
                    .await?;
                match g.as_ref().and_then(|g| Some((g, g.member(region, id)?))) {
                    Some((_, m)) if m.writer => DbRole::Primary,
                    Some((g, _)) => DbRole::Replica(
                        g.writer()
                            .map(|w| w.arn.clone())
                            .unwrap_or_else(|| g.arn.clone()),
                    ),
                    // Its global cluster does not list it: detached.
                    None => DbRole::Primary,
                }
            }
        };
        Ok(Some(CopyState {
            role,
            status: c.status,
            endpoint: c.endpoint,
            notes: Vec::new(),
            moves_with_primary: false,
            own_names: Vec::new(),
        }))
    }

    fn maintenance_call(&self) -> Option<&'static str> {
        Some(super::RDS_MAINTENANCE)
    }

    async fn maintenance(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<Vec<String>>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        let of = crate::cloud::MaintenanceOf::Cluster;
        let mut said = super::rds_maintenance(clouds, region, of, Some(id)).await?;
        // The cluster filter lists the cluster's own actions only: those
        // on its instances (an OS update) are read per instance.
        let members: Vec<String> = (clouds.aurora.describe_cluster(region, id).await?)
            .map(|c| c.members)
            .unwrap_or_default();
        for m in members {
            let of = crate::cloud::MaintenanceOf::Instance;
            let found = super::rds_maintenance(clouds, region, of, Some(&m)).await?;
            (said.get_or_insert_with(Vec::new))
                .extend((found.into_iter().flatten()).map(|n| format!("instance {m}: {n}")));
        }
        Ok(said)
    }
}

#[async_trait]
impl RpoSource for GlobalDatabaseSpec {
    fn metric(&self) -> &'static str {
        "AuroraGlobalDBRPOLag"
    }

    fn lag_call(&self) -> &'static str {
        "cloudwatch:GetMetricData"
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let Some(id) = self.copy(region) else {
            let why = format!(
                "global_database {} has no member cluster in {region}",
                self.id
            );
            return Err(super::no_copy(self.lag_call(), &self.id, region, why));
        };
        clouds.metrics.cluster_lag(region, id, window).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_identifiers_follow_rds_rules() {
        for ok in ["orders-global", "a", "orders-use1", &"a".repeat(63)] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1orders",
            "orders--x",
            "orders-",
            "orders_x",
            &"a".repeat(64),
        ] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }
}
