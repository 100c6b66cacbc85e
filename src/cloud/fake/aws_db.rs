//! RDS instances, Aurora clusters and global databases in the fake:
//! replicas, promotion, and a global database's switchover and failover
//! (done at once, or under way while the world is timed).

use super::*;

#[async_trait]
impl Database for FakeCloud {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbInstance>, CloudError> {
        let s = self.enter("rds:DescribeDBInstances", region, id).await?;
        Ok(s.databases.get(&(region.into(), id.into())).cloned())
    }

    async fn promote_replica(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let mut s = self.enter("rds:PromoteReadReplica", region, id).await?;
        let inst = s
            .databases
            .get_mut(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "PromoteReadReplica", id, region))?;
        if inst.role == DbRole::Primary {
            return Err(CloudError::new(
                "rds",
                "PromoteReadReplica",
                id,
                region,
                ErrorKind::Client,
                "instance is not a read replica",
            )
            .with_code("InvalidDBInstanceState"));
        }
        inst.role = DbRole::Primary;
        inst.backup_retention_days = 1;
        if let Some(t) = &self.timing {
            inst.status = "modifying".into();
            t.start(format!("db:{region}/{id}"), "rds:PromoteReadReplica");
        }
        let arn = inst.arn.clone();
        for other in s.databases.values_mut() {
            other.replicas.retain(|r| r != &arn);
        }
        s.writes.push(format!("PromoteReadReplica {id}"));
        Ok(())
    }

    /// One call, as RDS makes it: the promotion's answer carries the
    /// instance (a second call after it could be throttled on its own, and
    /// a resend of both would promote twice).
    async fn promote_known(
        &self,
        region: &str,
        known: &DbInstance,
    ) -> Result<DbInstance, CloudError> {
        self.promote_replica(region, &known.id).await?;
        self.state()
            .databases
            .get(&(region.to_string(), known.id.clone()))
            .cloned()
            .ok_or_else(|| not_found("rds", "PromoteReadReplica", &known.id, region))
    }

    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        self.tick("rds:CreateDBInstanceReadReplica", region, id)
            .await?;
        let source = {
            let s = self.state();
            if s.databases.contains_key(&(region.into(), id.into())) {
                return Err(CloudError::new(
                    "rds",
                    "CreateDBInstanceReadReplica",
                    id,
                    region,
                    ErrorKind::Client,
                    "instance already exists",
                )
                .with_code("DBInstanceAlreadyExists"));
            }
            s.databases
                .values()
                .find(|d| d.arn == source_arn)
                .map(|d| (d.region.clone(), d.id.clone()))
        };
        let (sr, si) = source
            .ok_or_else(|| not_found("rds", "CreateDBInstanceReadReplica", source_arn, region))?;
        self.add_replica(region, id, (&sr, &si));
        if let Some(inst) = self
            .state()
            .databases
            .get_mut(&(region.to_string(), id.to_string()))
        {
            if let Some(c) = &placement.instance_class {
                inst.instance_class = Some(c.clone());
            }
            inst.kms_key_id = placement.kms_key_id.clone();
            inst.storage_encrypted = placement.kms_key_id.is_some();
            inst.subnet_group = placement.subnet_group.clone();
            inst.security_groups = placement.security_groups.clone();
            inst.multi_az = placement.multi_az.unwrap_or(false);
            inst.tags = placement.tags.clone();
            if let Some(t) = &self.timing {
                inst.status = "creating".into();
                t.start(
                    format!("db:{region}/{id}"),
                    "rds:CreateDBInstanceReadReplica",
                );
            }
        }
        self.state()
            .writes
            .push(format!("CreateDBInstanceReadReplica {id}"));
        Ok(())
    }

    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:ModifyDBInstance", region, id).await?;
        let mut s = self.state();
        let mut inst = s
            .databases
            .remove(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "ModifyDBInstance", id, region))?;
        let old_arn = inst.arn.clone();
        inst.id = new_id.into();
        inst.arn = format!("arn:aws:rds:{region}:123456789012:db:{new_id}");
        inst.endpoint = Some(format!("{new_id}.fake.{region}.rds.amazonaws.com"));
        let new_arn = inst.arn.clone();
        s.databases.insert((region.into(), new_id.into()), inst);
        for other in s.databases.values_mut() {
            for r in other.replicas.iter_mut().filter(|r| **r == old_arn) {
                *r = new_arn.clone();
            }
        }
        s.writes.push(format!("ModifyDBInstance {id} -> {new_id}"));
        Ok(())
    }

    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        _point: RestorePoint,
    ) -> Result<(), CloudError> {
        self.tick("rds:RestoreDBInstanceToPointInTime", region, target_id)
            .await?;
        let exists = self
            .state()
            .databases
            .contains_key(&(region.into(), source_id.into()));
        if !exists {
            return Err(not_found(
                "rds",
                "RestoreDBInstanceToPointInTime",
                source_id,
                region,
            ));
        }
        self.add_primary(region, target_id);
        if let Some(t) = &self.timing
            && let Some(i) = self
                .state()
                .databases
                .get_mut(&(region.to_string(), target_id.to_string()))
        {
            i.status = "creating".into();
            t.start(
                format!("db:{region}/{target_id}"),
                "rds:RestoreDBInstanceToPointInTime",
            );
        }
        self.state()
            .writes
            .push(format!("RestoreDBInstanceToPointInTime {target_id}"));
        Ok(())
    }

    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.tick("rds:DeleteDBInstance", region, id).await?;
        let mut s = self.state();
        let Some(inst) = s.databases.remove(&(region.into(), id.into())) else {
            return Ok(());
        };
        s.cluster_instances.remove(&(region.into(), id.into()));
        for other in s.databases.values_mut() {
            other.replicas.retain(|r| r != &inst.arn);
        }
        s.writes.push(format!("DeleteDBInstance {id}"));
        Ok(())
    }

    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstance>, CloudError> {
        let s = self.enter("rds:DescribeDBInstances", region, "*").await?;
        Ok(s.databases
            .values()
            .filter(|d| d.region == region)
            .cloned()
            .collect())
    }

    async fn replicated_backups(
        &self,
        region: &str,
        source: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let s = (self.enter("rds:DescribeDBInstanceAutomatedBackups", region, source)).await?;
        let all = s.restorables.get(&(region.into(), source.into()));
        let backups = all
            .into_iter()
            .flatten()
            .filter(|r| r.id.starts_with("arn:"));
        Ok(backups.cloned().collect())
    }

    async fn snapshots_of(
        &self,
        region: &str,
        source: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let s = self
            .enter("rds:DescribeDBSnapshots", region, source)
            .await?;
        let all = s.restorables.get(&(region.into(), source.into()));
        let snapshots = all
            .into_iter()
            .flatten()
            .filter(|r| !r.id.starts_with("arn:"));
        let mut out: Vec<Restorable> = snapshots.cloned().collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn restore_backups(
        &self,
        region: &str,
        backups_arn: &str,
        target_id: &str,
        point: RestorePoint,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        let call = "rds:RestoreDBInstanceToPointInTime";
        let at = Some(point);
        self.restore_from(call, region, target_id, backups_arn, at, placement)
            .await
    }

    async fn restore_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target_id: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        let call = "rds:RestoreDBInstanceFromDBSnapshot";
        self.restore_from(call, region, target_id, snapshot, None, placement)
            .await
    }

    async fn replicate_backups(
        &self,
        region: &str,
        source_arn: &str,
        _retention_days: i32,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError> {
        let call = "rds:StartDBInstanceAutomatedBackupsReplication";
        let mut s = self.enter(call, region, source_arn).await?;
        let source = (s.databases.values())
            .find(|d| d.arn == source_arn)
            .map(|d| (d.region.clone(), d.id.clone(), d.storage_encrypted));
        let Some((from, id, encrypted)) = source else {
            return Err(not_found(
                "rds",
                "StartDBInstanceAutomatedBackupsReplication",
                source_arn,
                region,
            ));
        };
        let key = (region.to_string(), id.clone());
        let live = |r: &Restorable| {
            r.id.starts_with("arn:")
                && r.source_region.as_deref() == Some(&from)
                && r.status != "retained"
        };
        if s.restorables
            .get(&key)
            .is_some_and(|all| all.iter().any(live))
        {
            let e = CloudError::new(
                "rds",
                "StartDBInstanceAutomatedBackupsReplication",
                source_arn,
                region,
                ErrorKind::Client,
                "its automated backups are replicated here already",
            );
            return Err(e.with_code("InvalidDBInstanceAutomatedBackupState"));
        }
        // AWS: an encrypted source's backups need a key of the destination.
        if encrypted && kms_key_id.is_none() {
            let e = CloudError::new(
                "rds",
                "StartDBInstanceAutomatedBackupsReplication",
                source_arn,
                region,
                ErrorKind::Client,
                "an encrypted instance's backups need a KMS key of the destination Region",
            );
            return Err(e.with_code("KMSKeyNotAccessibleFault"));
        }
        let under = kms_key_id.map(|k| format!(" {k}")).unwrap_or_default();
        s.writes.push(format!(
            "StartDBInstanceAutomatedBackupsReplication {id}{under}"
        ));
        drop(s);
        let at = super::BackupAt {
            region,
            source: &id,
            from: &from,
        };
        self.add_restorable(at, None, Utc::now());
        let key = kms_key_id.filter(|_| encrypted).map(str::to_string);
        if let Some(b) = (self.state().restorables.get_mut(&(region.to_string(), id)))
            .and_then(|all| all.iter_mut().rev().find(|b| b.id.starts_with("arn:")))
        {
            b.kms_key_id = key;
        }
        Ok(())
    }

    async fn stop_replicating_backups(
        &self,
        region: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        let call = "rds:StopDBInstanceAutomatedBackupsReplication";
        let mut s = self.enter(call, region, source_arn).await?;
        let live = (s.restorables.iter_mut())
            .filter(|((r, _), _)| r == region)
            .flat_map(|(_, all)| all.iter_mut())
            .find(|b| b.source_arn.as_deref() == Some(source_arn) && b.status != "retained");
        let Some(b) = live else {
            let e = CloudError::new(
                "rds",
                "StopDBInstanceAutomatedBackupsReplication",
                source_arn,
                region,
                ErrorKind::Client,
                "its automated backups are not replicated here",
            );
            return Err(e.with_code("InvalidDBInstanceState"));
        };
        b.status = "retained".into();
        let id = b.source.clone();
        s.writes
            .push(format!("StopDBInstanceAutomatedBackupsReplication {id}"));
        Ok(())
    }

    async fn lacking(
        &self,
        region: &str,
        need: &crate::cloud::RestoreNeed,
    ) -> Result<Option<String>, CloudError> {
        let s = self.enter(need.call(), region, &need.to_string()).await?;
        Ok(s.lacking.get(&(region.into(), need.clone())).cloned())
    }

    async fn pending_maintenance(
        &self,
        region: &str,
        of: MaintenanceOf,
        id: &str,
    ) -> Result<Vec<PendingMaintenance>, CloudError> {
        let s = self
            .enter("rds:DescribePendingMaintenanceActions", region, id)
            .await?;
        let key = (region.to_string(), of, id.to_string());
        Ok(s.maintenance.get(&key).cloned().unwrap_or_default())
    }
}

impl FakeCloud {
    /// A restore from backups or a snapshot into a new instance, once: the
    /// name taken is refused as RDS refuses it; what it came from must
    /// exist in the region and be ready.
    async fn restore_from(
        &self,
        call: &'static str,
        region: &str,
        target: &str,
        from: &str,
        point: Option<RestorePoint>,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        self.tick(call, region, target).await?;
        let (service, operation) = call.split_once(':').unwrap_or(("rds", call));
        {
            let s = self.state();
            if s.databases.contains_key(&(region.into(), target.into())) {
                let e = CloudError::new(
                    "rds",
                    operation,
                    target,
                    region,
                    ErrorKind::Client,
                    "DB instance already exists",
                );
                return Err(e.with_code("DBInstanceAlreadyExists"));
            }
            let found = (s.restorables.iter())
                .filter(|((r, _), _)| r == region)
                .flat_map(|(_, all)| all)
                .any(|r| r.id == from && r.ready);
            if !found {
                return Err(not_found(service, operation, from, region));
            }
        }
        self.add_primary(region, target);
        let mut s = self.state();
        if let Some(i) = s.databases.get_mut(&(region.into(), target.into())) {
            i.tags = placement.tags.clone();
            i.subnet_group = placement.subnet_group.clone();
            if let Some(t) = &self.timing {
                i.status = "creating".into();
                t.start(format!("db:{region}/{target}"), call);
            }
        }
        let how = (from.to_string(), point, placement.clone());
        s.restored_from.insert((region.into(), target.into()), how);
        s.writes.push(format!("{operation} {target}"));
        Ok(())
    }
}

/// A cluster of the fake world, as `add_global` makes it.
pub(super) fn fake_cluster(region: &str, id: &str, global: Option<&str>) -> DbCluster {
    DbCluster {
        id: id.into(),
        arn: format!("arn:aws:rds:{region}:123456789012:cluster:{id}"),
        region: region.into(),
        engine: "aurora-postgresql".into(),
        status: "available".into(),
        endpoint: Some(format!("{id}.cluster-fake.{region}.rds.amazonaws.com")),
        reader_endpoint: Some(format!("{id}.cluster-ro-fake.{region}.rds.amazonaws.com")),
        global_cluster: global.map(str::to_string),
        backup_retention_days: 7,
        tags: BTreeMap::new(),
        members: Vec::new(),
    }
}

/// A global cluster whose move is done: the target writes, the old
/// writer is a secondary (its snapshot kept when data loss was allowed).
pub(super) fn settle_move(mut g: GlobalCluster) -> (GlobalCluster, Option<(String, String)>) {
    let Some(m) = g.moving.take() else {
        return (g, None);
    };
    let mut snapshot = None;
    for member in &mut g.members {
        if Some(&member.arn) == m.to.as_ref() {
            member.writer = true;
        } else if member.writer {
            member.writer = false;
            if m.data_loss_allowed {
                snapshot = Some((member.region.clone(), member.id.clone()));
            }
        }
    }
    g.status = "available".into();
    (g, snapshot)
}

impl FakeState {
    /// Keeps a settled move (and the unplanned failover's snapshot).
    pub(super) fn after_move(&mut self, (g, snapshot): (GlobalCluster, Option<(String, String)>)) {
        if let Some((region, id)) = snapshot {
            self.change_counter += 1;
            let snap = ClusterSnapshot {
                id: format!("rds:unplanned-global-failover-{id}-{}", self.change_counter),
                cluster: id,
                created: Some(Utc::now()),
                kind: "automated".into(),
                status: "available".into(),
                arn: None,
                encrypted: false,
            };
            self.cluster_snapshots.push((region, snap));
        }
        self.globals.insert(g.id.clone(), g);
    }
}

/// Global databases: a move is done at once, unless the world is timed,
/// where the global cluster shows it under way until the model's draw
/// for `rds:SwitchoverGlobalCluster` (or `rds:FailoverGlobalCluster`)
/// completes. Moves named in `refuse_moves` are refused with their code.
#[async_trait]
impl GlobalDatabases for FakeCloud {
    async fn describe_global(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GlobalCluster>, CloudError> {
        let s = self.enter("rds:DescribeGlobalClusters", region, id).await?;
        Ok(s.globals.get(id).cloned())
    }

    async fn describe_cluster(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, CloudError> {
        let s = self.enter("rds:DescribeDBClusters", region, id).await?;
        let members = (s.cluster_instances.iter())
            .filter(|((r, _), c)| r == region && c.as_str() == id)
            .map(|((_, i), _)| i.clone());
        let members: Vec<String> = members.collect();
        Ok((s.clusters.get(&(region.into(), id.into())).cloned())
            .map(|c| DbCluster { members, ..c }))
    }

    async fn switchover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:SwitchoverGlobalCluster", region, global)
            .await?;
        self.start_move("SwitchoverGlobalCluster", region, global, target_arn, false)
    }

    async fn failover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:FailoverGlobalCluster", region, global)
            .await?;
        self.start_move("FailoverGlobalCluster", region, global, target_arn, true)
    }

    async fn detach_cluster(
        &self,
        region: &str,
        global: &str,
        cluster_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:RemoveFromGlobalCluster", region, global)
            .await?;
        let mut s = self.state();
        s.reach("rds", "RemoveFromGlobalCluster", cluster_arn, region)?;
        let (_, id) = parse_cluster_arn(cluster_arn);
        let c = s
            .clusters
            .get_mut(&(region.into(), id.clone()))
            .ok_or_else(|| not_found("rds", "RemoveFromGlobalCluster", cluster_arn, region))?;
        c.global_cluster = None;
        if let Some(g) = s.globals.get_mut(global) {
            g.members.retain(|m| m.arn != cluster_arn);
        }
        s.writes.push(format!("RemoveFromGlobalCluster {id}"));
        Ok(())
    }

    async fn cluster_snapshots(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<ClusterSnapshot>, CloudError> {
        let s = self
            .enter("rds:DescribeDBClusterSnapshots", region, cluster)
            .await?;
        Ok(s.cluster_snapshots
            .iter()
            .filter(|(r, snap)| r == region && snap.cluster == cluster)
            .map(|(_, snap)| snap.clone())
            .collect())
    }

    async fn delete_global(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let mut s = self.enter("rds:DeleteGlobalCluster", region, id).await?;
        if s.globals.get(id).is_some_and(|g| !g.members.is_empty()) {
            return Err(CloudError::new(
                "rds",
                "DeleteGlobalCluster",
                id,
                region,
                ErrorKind::Client,
                "the global cluster still has members",
            )
            .with_code("InvalidGlobalClusterStateFault"));
        }
        if s.globals.remove(id).is_some() {
            s.writes.push(format!("DeleteGlobalCluster {id}"));
        }
        Ok(())
    }

    async fn create_global(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        let mut s = self.enter("rds:CreateGlobalCluster", region, id).await?;
        if s.globals.contains_key(id) {
            return Err(CloudError::new(
                "rds",
                "CreateGlobalCluster",
                id,
                region,
                ErrorKind::Client,
                "a global cluster of that id exists",
            )
            .with_code("GlobalClusterAlreadyExistsFault"));
        }
        let (r, cid) = parse_cluster_arn(source_arn);
        let c = s
            .clusters
            .get_mut(&(r.clone(), cid.clone()))
            .ok_or_else(|| not_found("rds", "CreateGlobalCluster", source_arn, region))?;
        c.global_cluster = Some(id.to_string());
        let g = GlobalCluster {
            id: id.into(),
            arn: format!("arn:aws:rds::123456789012:global-cluster:{id}"),
            status: "available".into(),
            endpoint: Some(format!("{id}.global-fake.global.rds.amazonaws.com")),
            members: vec![GlobalMember {
                arn: source_arn.into(),
                writer: true,
                region: r,
                id: cid,
            }],
            moving: None,
        };
        s.globals.insert(id.into(), g);
        s.writes.push(format!("CreateGlobalCluster {id}"));
        Ok(())
    }

    async fn create_secondary(
        &self,
        region: &str,
        id: &str,
        global: &str,
        _engine: &str,
    ) -> Result<(), CloudError> {
        let mut s = self.enter("rds:CreateDBCluster", region, id).await?;
        if s.clusters.contains_key(&(region.into(), id.into())) {
            return Err(CloudError::new(
                "rds",
                "CreateDBCluster",
                id,
                region,
                ErrorKind::Client,
                "a cluster of that id exists",
            )
            .with_code("DBClusterAlreadyExistsFault"));
        }
        let c = fake_cluster(region, id, Some(global));
        let Some(g) = s.globals.get_mut(global) else {
            return Err(not_found("rds", "CreateDBCluster", global, region));
        };
        g.members.push(GlobalMember {
            arn: c.arn.clone(),
            writer: false,
            region: region.into(),
            id: id.into(),
        });
        s.clusters.insert((region.into(), id.into()), c);
        s.writes.push(format!("CreateDBCluster {id}"));
        Ok(())
    }

    async fn rename_cluster(&self, region: &str, id: &str, new_id: &str) -> Result<(), CloudError> {
        let mut s = self.enter("rds:ModifyDBCluster", region, id).await?;
        let mut c = s
            .clusters
            .remove(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "ModifyDBCluster", id, region))?;
        let old_arn = c.arn.clone();
        c.id = new_id.into();
        c.arn = format!("arn:aws:rds:{region}:123456789012:cluster:{new_id}");
        c.endpoint = Some(format!("{new_id}.cluster-fake.{region}.rds.amazonaws.com"));
        for g in s.globals.values_mut() {
            for m in g.members.iter_mut().filter(|m| m.arn == old_arn) {
                m.arn = c.arn.clone();
                m.id = new_id.into();
            }
        }
        s.clusters.insert((region.into(), new_id.into()), c);
        s.writes.push(format!("ModifyDBCluster {id} -> {new_id}"));
        Ok(())
    }
    async fn cluster_copies(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let s = (self.enter("rds:DescribeDBClusterSnapshots", region, cluster)).await?;
        let all = s.restorables.get(&(region.into(), cluster.into()));
        let snapshots = (all.into_iter().flatten()).filter(|r| !r.id.starts_with("arn:"));
        let mut out: Vec<Restorable> = snapshots.cloned().collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn snapshot_cluster(
        &self,
        region: &str,
        cluster: &str,
        snapshot: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "CreateDBClusterSnapshot";
        self.tick("rds:CreateDBClusterSnapshot", region, snapshot)
            .await?;
        let mut s = self.state();
        s.reach("rds", OP, snapshot, region)?;
        if !s.clusters.contains_key(&(region.into(), cluster.into())) {
            return Err(not_found("rds", OP, cluster, region).with_code("DBClusterNotFoundFault"));
        }
        if (s.cluster_snapshots.iter()).any(|(r, x)| r == region && x.id == snapshot) {
            let e = CloudError::new(
                "rds",
                OP,
                snapshot,
                region,
                ErrorKind::Client,
                "DB cluster snapshot already exists",
            );
            return Err(e.with_code("DBClusterSnapshotAlreadyExistsFault"));
        }
        let snap = ClusterSnapshot {
            id: snapshot.into(),
            cluster: cluster.into(),
            created: Some(Utc::now()),
            kind: "manual".into(),
            status: "available".into(),
            arn: Some(format!(
                "arn:aws:rds:{region}:123456789012:cluster-snapshot:{snapshot}"
            )),
            encrypted: s
                .encrypted_clusters
                .contains(&(region.into(), cluster.into())),
        };
        s.cluster_snapshots.push((region.into(), snap));
        s.writes.push(format!("{OP} {snapshot}"));
        Ok(())
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_arn: &str,
        target: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError> {
        const OP: &str = "CopyDBClusterSnapshot";
        self.tick("rds:CopyDBClusterSnapshot", region, target)
            .await?;
        let source = {
            let s = self.state();
            s.reach("rds", OP, target, region)?;
            let found = (s.cluster_snapshots.iter())
                .find(|(_, x)| x.arn.as_deref() == Some(source_arn))
                .map(|(r, x)| (r.clone(), x.clone()));
            let Some((from, snap)) = found else {
                return Err(not_found("rds", OP, source_arn, region)
                    .with_code("DBClusterSnapshotNotFoundFault"));
            };
            let taken = (s
                .restorables
                .get(&(region.to_string(), snap.cluster.clone())))
            .is_some_and(|all| all.iter().any(|r| r.id == target));
            if taken {
                let e = CloudError::new(
                    "rds",
                    OP,
                    target,
                    region,
                    ErrorKind::Client,
                    "DB cluster snapshot already exists",
                );
                return Err(e.with_code("DBClusterSnapshotAlreadyExistsFault"));
            }
            // AWS: an encrypted source's copy needs a key of the destination.
            if snap.encrypted && kms_key_id.is_none() {
                let e = CloudError::new(
                    "rds",
                    OP,
                    target,
                    region,
                    ErrorKind::Client,
                    "an encrypted snapshot's copy into another Region needs a KMS key of that Region",
                );
                return Err(e.with_code("KMSKeyNotAccessibleFault"));
            }
            (from, snap)
        };
        let (from, snap) = source;
        let at = super::BackupAt {
            region,
            source: &snap.cluster,
            from: &from,
        };
        self.add_restorable(at, Some(target), snap.created.unwrap_or_else(Utc::now));
        if let Some(r) = (self
            .state()
            .restorables
            .get_mut(&(region.to_string(), snap.cluster.clone())))
        .and_then(|all| all.iter_mut().find(|r| r.id == target))
        {
            r.kms_key_id = kms_key_id.filter(|_| snap.encrypted).map(str::to_string);
            r.engine = Some("aurora-postgresql".into());
        }
        let under = kms_key_id.map(|k| format!(" {k}")).unwrap_or_default();
        self.state().writes.push(format!("{OP} {target}{under}"));
        Ok(())
    }

    async fn restore_cluster_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target: &str,
        engine: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        const OP: &str = "RestoreDBClusterFromSnapshot";
        self.tick("rds:RestoreDBClusterFromSnapshot", region, target)
            .await?;
        let mut s = self.state();
        s.reach("rds", OP, target, region)?;
        if s.clusters.contains_key(&(region.into(), target.into())) {
            let e = CloudError::new(
                "rds",
                OP,
                target,
                region,
                ErrorKind::Client,
                "DB cluster already exists",
            );
            return Err(e.with_code("DBClusterAlreadyExistsFault"));
        }
        let found = (s.restorables.iter())
            .filter(|((r, _), _)| r == region)
            .flat_map(|(_, all)| all)
            .any(|r| r.id == snapshot && r.ready);
        if !found {
            return Err(
                not_found("rds", OP, snapshot, region).with_code("DBClusterSnapshotNotFoundFault")
            );
        }
        // A standalone cluster with no instance: its writer is added once
        // it is available, as Aurora asks.
        let mut made = fake_cluster(region, target, None);
        made.engine = engine.into();
        made.tags = placement.tags.clone();
        if let Some(t) = &self.timing {
            made.status = "creating".into();
            t.start(
                format!("cluster:{region}/{target}"),
                "rds:RestoreDBClusterFromSnapshot",
            );
        }
        s.clusters.insert((region.into(), target.into()), made);
        let how = (snapshot.to_string(), None, placement.clone());
        s.restored_from.insert((region.into(), target.into()), how);
        s.writes.push(format!("{OP} {target}"));
        Ok(())
    }

    async fn clone_cluster(
        &self,
        region: &str,
        source: &str,
        target: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        const OP: &str = "RestoreDBClusterToPointInTime";
        self.tick("rds:RestoreDBClusterToPointInTime", region, target)
            .await?;
        let mut s = self.state();
        s.reach("rds", OP, target, region)?;
        if s.clusters.contains_key(&(region.into(), target.into())) {
            return Err(CloudError::new(
                "rds",
                OP,
                target,
                region,
                ErrorKind::Client,
                "DB cluster already exists",
            )
            .with_code("DBClusterAlreadyExistsFault"));
        }
        let engine = s
            .clusters
            .get(&(region.into(), source.into()))
            .map(|c| c.engine.clone())
            .ok_or_else(|| not_found("rds", OP, source, region))?;
        // A standalone cluster: a clone never joins its source's global
        // cluster, and carries only the tags it is given.
        let mut copy = fake_cluster(region, target, None);
        copy.engine = engine;
        copy.tags = tags.clone();
        if let Some(t) = &self.timing {
            copy.status = "creating".into();
            t.start(
                format!("cluster:{region}/{target}"),
                "rds:RestoreDBClusterToPointInTime",
            );
        }
        s.clusters.insert((region.into(), target.into()), copy);
        s.writes.push(format!("{OP} {target}"));
        Ok(())
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
        const OP: &str = "CreateDBInstance";
        self.tick("rds:CreateDBInstance", region, instance).await?;
        {
            let s = self.state();
            s.reach("rds", OP, instance, region)?;
            match s.clusters.get(&(region.into(), cluster.into())) {
                None => return Err(not_found("rds", OP, cluster, region)),
                Some(c) if !c.is_available() => {
                    return Err(CloudError::new(
                        "rds",
                        OP,
                        instance,
                        region,
                        ErrorKind::Client,
                        format!("DB cluster {cluster} is {}, not available", c.status),
                    )
                    .with_code("InvalidDBClusterStateFault"));
                }
                Some(_) => {}
            }
            if s.databases.contains_key(&(region.into(), instance.into())) {
                return Err(CloudError::new(
                    "rds",
                    OP,
                    instance,
                    region,
                    ErrorKind::Client,
                    "instance already exists",
                )
                .with_code("DBInstanceAlreadyExists"));
            }
        }
        self.add_primary(region, instance);
        let mut s = self.state();
        if let Some(i) = s.databases.get_mut(&(region.into(), instance.into())) {
            i.engine = engine.into();
            i.instance_class = Some(class.into());
            i.tags = tags.clone();
            i.backup_retention_days = 0;
            if let Some(t) = &self.timing {
                i.status = "creating".into();
                t.start(format!("db:{region}/{instance}"), "rds:CreateDBInstance");
            }
        }
        s.cluster_instances
            .insert((region.into(), instance.into()), cluster.into());
        s.writes.push(format!("{OP} {instance}"));
        Ok(())
    }

    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let mut s = self.enter("rds:DeleteDBCluster", region, id).await?;
        let members: Vec<(String, String)> = (s.cluster_instances.iter())
            .filter(|(k, c)| k.0 == region && c.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in members {
            s.cluster_instances.remove(&key);
            if s.databases.remove(&key).is_some() {
                s.writes.push(format!("DeleteDBInstance {}", key.1));
            }
        }
        if s.clusters.remove(&(region.into(), id.into())).is_some() {
            s.writes.push(format!("DeleteDBCluster {id}"));
        }
        Ok(())
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<DbCluster>, CloudError> {
        let s = self.enter("rds:DescribeDBClusters", region, "*").await?;
        Ok(s.clusters
            .values()
            .filter(|c| c.region == region)
            .cloned()
            .collect())
    }
}

impl FakeCloud {
    /// Starts moving `global`'s writer to `target_arn` (see the impl).
    fn start_move(
        &self,
        op: &'static str,
        region: &str,
        global: &str,
        target_arn: &str,
        data_loss: bool,
    ) -> Result<(), CloudError> {
        let mut s = self.state();
        s.reach("rds", op, global, region)?;
        if let Some(code) = s.refuse_moves.get(op) {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                format!("{code}: refused by the fake cloud"),
            )
            .with_code(code));
        }
        let mut g = s
            .globals
            .get(global)
            .cloned()
            .ok_or_else(|| not_found("rds", op, global, region))?;
        if g.moving.is_some() {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                "the global cluster is already moving its writer",
            )
            .with_code("InvalidGlobalClusterStateFault"));
        }
        let target = g.members.iter().find(|m| m.arn == target_arn);
        if target.is_none_or(|m| m.writer) {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                format!("{target_arn} is not a secondary of {global}"),
            )
            .with_code("InvalidParameterValue"));
        }
        g.moving = Some(GlobalMove {
            status: if data_loss {
                "failing-over"
            } else {
                "switching-over"
            }
            .into(),
            from: g.writer().map(|w| w.arn.clone()),
            to: Some(target_arn.into()),
            data_loss_allowed: data_loss,
        });
        g.status = g
            .moving
            .as_ref()
            .map(|m| m.status.clone())
            .unwrap_or_default();
        s.writes.push(format!("{op} {global}"));
        match &self.timing {
            Some(t) => {
                t.start(format!("global:{global}"), &format!("rds:{op}"));
                s.globals.insert(global.into(), g);
            }
            None => {
                let settled = settle_move(g);
                s.after_move(settled);
            }
        }
        Ok(())
    }
}
