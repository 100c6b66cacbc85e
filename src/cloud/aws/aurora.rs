//! Aurora Global Database: global clusters, their member clusters, and the
//! three ways a failover moves the writer.
//!
//! Every call goes to the region it names. The global cluster is described
//! through the *target* region's endpoint (any region's answers for it), so
//! a failover never waits for the home region's API, which may be the one
//! that is down. A move (`SwitchoverGlobalCluster`, `FailoverGlobalCluster`)
//! is asked of the target region too; a detach (`RemoveFromGlobalCluster`)
//! of the member's own region.
//!
//! The three writes are not idempotent on the provider (a second switchover
//! while one runs is `InvalidGlobalClusterStateFault`), so each is sent at
//! most once per attempt that may have acted: an answer lost after the call
//! (a dropped connection, a 5xx) is followed by a read of the global
//! cluster, and a move already under way or done is the call's effect.
//!
//! A drill's copy (`drill-copy` of a global database) is made here too: a clone of the
//! target's secondary (`RestoreDBClusterToPointInTime`, copy-on-write) and
//! its writer instance (`CreateDBInstance`), each sent at most once
//! ([`super::act_once`]: a lost answer is followed by a read, and what exists
//! is the call's effect), and deleted with its instances at cleanup.

use async_trait::async_trait;
use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbCluster as SdkCluster, Filter, GlobalCluster as SdkGlobal, Tag};

use super::{Call, Regional, Sdk, act_once, call, to_chrono};
use crate::cloud::GlobalDatabases;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    CloudError, ClusterSnapshot, DbCluster, ErrorKind, GlobalCluster, GlobalMember, GlobalMove,
    ReplicaPlacement, Restorable, parse_cluster_arn,
};

const SERVICE: &str = "rds";

/// Clusters one DescribeDBClusters page asks for (RDS allows 20 to 100).
const LIST_PAGE: i32 = 100;

/// A drill's tags as RDS takes them.
fn sdk_tags(tags: &BTreeMap<String, String>) -> Option<Vec<Tag>> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    })
}

/// A cluster snapshot as a restorable copy: restorable to the moment it
/// was taken, from the Region its source snapshot's ARN names (a copy's).
fn cluster_copy(s: &aws_sdk_rds::types::DbClusterSnapshot) -> Restorable {
    let status = s.status().unwrap_or_default().to_string();
    let taken = s.snapshot_create_time().and_then(to_chrono);
    let from = (s.source_db_cluster_snapshot_arn()).and_then(|a| a.split(':').nth(3));
    Restorable {
        id: (s.db_cluster_snapshot_identifier().unwrap_or_default()).to_string(),
        source: s.db_cluster_identifier().unwrap_or_default().to_string(),
        source_arn: None,
        source_region: from.map(str::to_string),
        ready: status == "available",
        status,
        earliest: taken,
        latest: taken,
        // RDS names a key for encrypted snapshots only (moto names one for
        // every snapshot): an unencrypted copy needs none.
        kms_key_id: (s.kms_key_id())
            .filter(|_| s.storage_encrypted() == Some(true))
            .map(str::to_string),
        progress: s.percent_progress(),
        engine: s.engine().map(str::to_string),
        engine_version: s.engine_version().map(str::to_string),
    }
}

/// [`crate::cloud::GlobalDatabases`] over RDS.
pub struct AuroraGlobal {
    clients: Regional<aws_sdk_rds::Client>,
    retry: RetryPolicy,
}

impl AuroraGlobal {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::rds),
            retry,
        }
    }

    /// A move's call, sent once: when an attempt's answer is lost, the
    /// global cluster is read, and a move toward `target_arn` (under way,
    /// or done) is that attempt's effect.
    async fn move_once<F, Fut, E>(
        &self,
        c: Call<'_>,
        global: &str,
        target_arn: &str,
        op: F,
    ) -> Result<(), CloudError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), aws_sdk_rds::error::SdkError<E>>>,
        E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // A repeat refused because a move is under way is that move.
        act_once(
            &self.retry,
            c,
            Some("InvalidGlobalClusterStateFault"),
            op,
            || async {
                let g = self.describe_global(c.region, global).await?;
                Ok(g.is_some_and(|g| moving_to(&g, target_arn)))
            },
        )
        .await
        .map(|_| ())
    }
}

impl AuroraGlobal {
    /// DescribeDBClusters of one cluster, as the SDK gives it (its members
    /// included); `Ok(None)` when it does not exist.
    async fn cluster_raw(
        &self,
        region: &str,
        id: &str,
        retry: &RetryPolicy,
    ) -> Result<Option<SdkCluster>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBClusters", id, region);
        match call(retry, c, || {
            client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
        })
        .await
        {
            Ok(out) => Ok(out.db_clusters().first().cloned()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether cluster snapshot `id` exists in `region`: how a create or a
    /// copy whose answer was lost is settled (one read, not retried).
    async fn snapshot_exists(&self, region: &str, id: &str) -> Result<bool, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBClusterSnapshots", id, region);
        let read = call(&RetryPolicy::none(), c, || {
            client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(id)
                .send()
        })
        .await;
        match read {
            Ok(o) => Ok(!o.db_cluster_snapshots().is_empty()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The status of DB instance `id` in `region`, `None` when it does not
    /// exist (one attempt: the callers are retry loops).
    async fn instance_status(&self, region: &str, id: &str) -> Result<Option<String>, CloudError> {
        let client = self.clients.get(region);
        let found =
            super::describe_db_instance(&client, &RetryPolicy::none(), (id, region)).await?;
        Ok(found.map(|i| i.db_instance_status().unwrap_or_default().to_string()))
    }

    /// Asks for the deletion of member instance `id` (no final snapshot),
    /// as RDS deletes an instance: one already gone or being deleted is
    /// done.
    async fn delete_member(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        super::delete_db_instance(&client, &self.retry, (id, region), false).await
    }
}

/// Whether `g` moves (or has moved) its writer to `target_arn`.
fn moving_to(g: &GlobalCluster, target_arn: &str) -> bool {
    g.moving
        .as_ref()
        .is_some_and(|m| m.to.as_deref() == Some(target_arn))
        || g.writer().is_some_and(|w| w.arn == target_arn)
}

fn global_to_domain(g: &SdkGlobal) -> GlobalCluster {
    GlobalCluster {
        id: g
            .global_cluster_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: g.global_cluster_arn().unwrap_or_default().to_string(),
        status: g.status().unwrap_or_default().to_string(),
        endpoint: g.endpoint().map(str::to_string),
        members: g
            .global_cluster_members()
            .iter()
            .map(|m| {
                let arn = m.db_cluster_arn().unwrap_or_default().to_string();
                let (region, id) = parse_cluster_arn(&arn);
                GlobalMember {
                    writer: m.is_writer().unwrap_or(false),
                    arn,
                    region,
                    id,
                }
            })
            .collect(),
        moving: g.failover_state().map(|f| GlobalMove {
            status: f
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            from: f.from_db_cluster_arn().map(str::to_string),
            to: f.to_db_cluster_arn().map(str::to_string),
            data_loss_allowed: f.is_data_loss_allowed().unwrap_or(false),
        }),
    }
}

fn cluster_to_domain(region: &str, c: &SdkCluster) -> DbCluster {
    DbCluster {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        endpoint: c.endpoint().filter(|e| !e.is_empty()).map(str::to_string),
        reader_endpoint: c
            .reader_endpoint()
            .filter(|e| !e.is_empty())
            .map(str::to_string),
        global_cluster: c
            .global_cluster_identifier()
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        backup_retention_days: c.backup_retention_period().unwrap_or(0),
        tags: c
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        members: (c.db_cluster_members().iter())
            .filter_map(|m| m.db_instance_identifier().map(str::to_string))
            .collect(),
    }
}

#[async_trait]
impl GlobalDatabases for AuroraGlobal {
    async fn describe_global(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GlobalCluster>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeGlobalClusters", id, region);
        let out = call(&self.retry, c, || {
            client
                .describe_global_clusters()
                .global_cluster_identifier(id)
                .send()
        })
        .await;
        match out {
            Ok(out) => Ok(out
                .global_clusters()
                .iter()
                .find(|g| {
                    g.global_cluster_identifier()
                        .is_some_and(|g| g.eq_ignore_ascii_case(id))
                })
                .map(global_to_domain)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn describe_cluster(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, CloudError> {
        let found = self.cluster_raw(region, id, &self.retry).await?;
        Ok(found.map(|c| cluster_to_domain(region, &c)))
    }

    async fn switchover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "SwitchoverGlobalCluster", global, region);
        self.move_once(c, global, target_arn, || async {
            client
                .switchover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(target_arn)
                .send()
                .await
                .map(|_| ())
        })
        .await
    }

    async fn failover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "FailoverGlobalCluster", global, region);
        self.move_once(c, global, target_arn, || async {
            client
                .failover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(target_arn)
                .allow_data_loss(true)
                .send()
                .await
                .map(|_| ())
        })
        .await
    }

    async fn detach_cluster(
        &self,
        region: &str,
        global: &str,
        cluster_arn: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "RemoveFromGlobalCluster", cluster_arn, region);
        let (_, id) = parse_cluster_arn(cluster_arn);
        let detached = || async {
            Ok::<bool, CloudError>(
                self.describe_cluster(region, &id)
                    .await?
                    .is_some_and(|c| c.global_cluster.is_none()),
            )
        };
        let out = call(&self.retry, c, || {
            client
                .remove_from_global_cluster()
                .global_cluster_identifier(global)
                .db_cluster_identifier(cluster_arn)
                .send()
        })
        .await;
        match out {
            Ok(_) => Ok(()),
            // Already detached (a repeated call after a lost answer, or a
            // global cluster gone): the member's own read says so.
            Err(e) if detached().await.unwrap_or(false) => {
                tracing::info!(cluster = cluster_arn, error = %e, "already detached");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn cluster_snapshots(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<ClusterSnapshot>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBClusterSnapshots", cluster, region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_cluster_snapshots()
                    .db_cluster_identifier(cluster)
                    .set_filters(None::<Vec<Filter>>)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for s in page.db_cluster_snapshots() {
                out.push(ClusterSnapshot {
                    id: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .into(),
                    cluster: s.db_cluster_identifier().unwrap_or_default().into(),
                    created: s.snapshot_create_time().and_then(to_chrono),
                    kind: s.snapshot_type().unwrap_or_default().into(),
                    status: s.status().unwrap_or_default().into(),
                    arn: s.db_cluster_snapshot_arn().map(str::to_string),
                    encrypted: s.storage_encrypted() == Some(true),
                });
            }
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        Ok(out)
    }

    async fn cluster_copies(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBClusterSnapshots", cluster, region);
        let (mut out, mut marker) = (Vec::new(), None::<String>);
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_cluster_snapshots()
                    .db_cluster_identifier(cluster)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
            let page = match page {
                Err(e) if e.kind == ErrorKind::NotFound => break,
                other => other?,
            };
            // Copies from another Region only: a snapshot taken here (an
            // old primary's, or an automated one) is no standby's.
            let copied = (page.db_cluster_snapshots().iter()).map(cluster_copy);
            out.extend(copied.filter(|r| r.source_region.as_deref().is_some_and(|f| f != region)));
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn restore_cluster_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target: &str,
        engine: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "RestoreDBClusterFromSnapshot", target, region);
        // The key is the snapshot's (a copy is encrypted with a key of its
        // Region when it is copied): a restore takes no KmsKeyId.
        let groups =
            (!placement.security_groups.is_empty()).then(|| placement.security_groups.clone());
        act_once(
            &self.retry,
            c,
            Some("DBClusterAlreadyExistsFault"),
            || {
                client
                    .restore_db_cluster_from_snapshot()
                    .snapshot_identifier(snapshot)
                    .db_cluster_identifier(target)
                    .engine(engine)
                    .set_db_subnet_group_name(placement.subnet_group.clone())
                    .set_db_cluster_parameter_group_name(placement.cluster_parameter_group.clone())
                    .set_vpc_security_group_ids(groups.clone())
                    .set_tags(sdk_tags(&placement.tags))
                    .send()
            },
            || async {
                Ok(self
                    .cluster_raw(region, target, &RetryPolicy::none())
                    .await?
                    .is_some())
            },
        )
        .await
        .map(|_| ())
    }

    async fn snapshot_cluster(
        &self,
        region: &str,
        cluster: &str,
        snapshot: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateDBClusterSnapshot", snapshot, region);
        act_once(
            &self.retry,
            c,
            Some("DBClusterSnapshotAlreadyExistsFault"),
            || {
                client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(cluster)
                    .db_cluster_snapshot_identifier(snapshot)
                    .send()
            },
            || self.snapshot_exists(region, snapshot),
        )
        .await
        .map(|_| ())
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_arn: &str,
        target: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CopyDBClusterSnapshot", target, region);
        act_once(
            &self.retry,
            c,
            Some("DBClusterSnapshotAlreadyExistsFault"),
            || {
                client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(source_arn)
                    .target_db_cluster_snapshot_identifier(target)
                    .set_kms_key_id(kms_key_id.map(str::to_string))
                    .send()
            },
            || self.snapshot_exists(region, target),
        )
        .await
        .map(|_| ())
    }

    async fn clone_cluster(
        &self,
        region: &str,
        source: &str,
        target: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "RestoreDBClusterToPointInTime", target, region);
        act_once(
            &self.retry,
            c,
            Some("DBClusterAlreadyExistsFault"),
            || {
                client
                    .restore_db_cluster_to_point_in_time()
                    .db_cluster_identifier(target)
                    .source_db_cluster_identifier(source)
                    .restore_type("copy-on-write")
                    .use_latest_restorable_time(true)
                    .set_tags(sdk_tags(tags))
                    .send()
            },
            || async {
                Ok(self
                    .cluster_raw(region, target, &RetryPolicy::none())
                    .await?
                    .is_some())
            },
        )
        .await
        .map(|_| ())
    }

    async fn add_writer(
        &self,
        region: &str,
        cluster: &str,
        instance: &str,
        engine: &str,
        class: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateDBInstance", instance, region);
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                client
                    .create_db_instance()
                    .db_instance_identifier(instance)
                    .db_cluster_identifier(cluster)
                    .engine(engine)
                    .db_instance_class(class)
                    .set_tags(sdk_tags(tags))
                    .send()
            },
            || async { Ok(self.instance_status(region, instance).await?.is_some()) },
        )
        .await
        .map(|_| ())
    }

    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let Some(cluster) = self.cluster_raw(region, id, &self.retry).await? else {
            return Ok(());
        };
        for m in cluster.db_cluster_members() {
            if let Some(instance) = m.db_instance_identifier() {
                self.delete_member(region, instance).await?;
            }
        }
        if cluster.status() == Some("deleting") {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DeleteDBCluster", id, region);
        let gone = || async {
            let found = self.cluster_raw(region, id, &RetryPolicy::none()).await?;
            Ok(found.is_none_or(|c| c.status() == Some("deleting")))
        };
        let send = || {
            (client.delete_db_cluster())
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .send()
        };
        super::delete_once(&self.retry, c, "InvalidDBClusterStateFault", send, gone).await
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<DbCluster>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBClusters", "*", region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_clusters()
                    .max_records(LIST_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
            out.extend(
                page.db_clusters()
                    .iter()
                    .map(|c| cluster_to_domain(region, c)),
            );
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        Ok(out)
    }
    async fn delete_global(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DeleteGlobalCluster", id, region);
        let gone = || async { Ok(self.describe_global(region, id).await?.is_none()) };
        let send = || {
            (client.delete_global_cluster())
                .global_cluster_identifier(id)
                .send()
        };
        super::delete_once(&self.retry, c, "InvalidGlobalClusterStateFault", send, gone).await
    }

    async fn create_global(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateGlobalCluster", id, region);
        act_once(
            &self.retry,
            c,
            Some("GlobalClusterAlreadyExistsFault"),
            || {
                client
                    .create_global_cluster()
                    .global_cluster_identifier(id)
                    .source_db_cluster_identifier(source_arn)
                    .send()
            },
            || async {
                let g = self.describe_global(region, id).await?;
                Ok(g.is_some_and(|g| g.members.iter().any(|m| m.arn == source_arn)))
            },
        )
        .await
        .map(|_| ())
    }

    async fn create_secondary(
        &self,
        region: &str,
        id: &str,
        global: &str,
        engine: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateDBCluster", id, region);
        act_once(
            &self.retry,
            c,
            Some("DBClusterAlreadyExistsFault"),
            || {
                client
                    .create_db_cluster()
                    .db_cluster_identifier(id)
                    .engine(engine)
                    .global_cluster_identifier(global)
                    .send()
            },
            || async {
                Ok(self
                    .cluster_raw(region, id, &RetryPolicy::none())
                    .await?
                    .is_some())
            },
        )
        .await
        .map(|_| ())
    }

    async fn rename_cluster(&self, region: &str, id: &str, new_id: &str) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "ModifyDBCluster", id, region);
        let send = || {
            client
                .modify_db_cluster()
                .db_cluster_identifier(id)
                .new_db_cluster_identifier(new_id)
                .apply_immediately(true)
                .send()
        };
        match call(&self.retry, c, send).await {
            Ok(_) => Ok(()),
            // Renamed already (an answer lost): the new name exists.
            Err(e)
                if e.kind == ErrorKind::NotFound
                    && self
                        .describe_cluster(region, new_id)
                        .await
                        .is_ok_and(|c| c.is_some()) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_arn_names_its_region_and_cluster() {
        assert_eq!(
            parse_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:orders-use1"),
            ("us-east-1".to_string(), "orders-use1".to_string())
        );
        assert_eq!(
            parse_cluster_arn("orders-use1"),
            (String::new(), "orders-use1".to_string())
        );
    }

    #[test]
    fn a_move_under_way_or_done_toward_the_target_is_its_effect() {
        let member = |arn: &str, writer| GlobalMember {
            arn: arn.into(),
            writer,
            region: String::new(),
            id: String::new(),
        };
        let mut g = GlobalCluster {
            id: "g".into(),
            arn: "g".into(),
            status: "available".into(),
            endpoint: None,
            members: vec![member("a", true), member("b", false)],
            moving: None,
        };
        assert!(!moving_to(&g, "b"));
        g.moving = Some(GlobalMove {
            status: "pending".into(),
            from: Some("a".into()),
            to: Some("b".into()),
            data_loss_allowed: true,
        });
        assert!(moving_to(&g, "b"));
        g.moving = None;
        g.members = vec![member("a", false), member("b", true)];
        assert!(moving_to(&g, "b"));
        assert!(!moving_to(&g, "a"));
    }
}
