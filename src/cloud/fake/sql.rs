//! Cloud SQL in the fake: instances, their long-running operations and the
//! effects an operation applies when done (promotion, switchover, restore).

use super::*;

/// Cloud SQL's state: its former primaries' rejoins, its operations and
/// what each does when done.
impl FakeState {
    /// The former primaries of DR failovers whose regions answer again
    /// rejoin: each a read replica of the new primary (not yet designated
    /// its DR replica: `drctl reprotect` does that).
    pub(crate) fn sql_rejoin(&mut self) {
        let pending = std::mem::take(&mut self.sql_rejoins);
        for (project, old, new) in pending {
            let key = |n: &str| (project.clone(), n.to_string());
            let back = (self.sql.get(&key(&old))).is_some_and(|o| {
                self.reach("sqladmin", "instances.get", &old, &o.region)
                    .is_ok()
            });
            if !back {
                self.sql_rejoins.push((project, old, new));
                continue;
            }
            if let Some(o) = self.sql.get_mut(&key(&old)) {
                o.role = DbRole::Replica(new.clone());
                o.dr_replica = false;
            }
            if let Some(n) = self.sql.get_mut(&key(&new))
                && !n.replicas.contains(&old)
            {
                n.replicas.push(old.clone());
            }
        }
    }

    /// Starts a Cloud SQL operation `kind` on `target`, `PENDING`, its
    /// effect applied when it is done (or the error armed for it).
    pub(crate) fn start_sql_op(
        &mut self,
        project: &str,
        target: &str,
        kind: &str,
        effect: SqlEffect,
    ) -> SqlOperation {
        let n = self.sql_ops.len() + 1;
        let error = (self.sql_failures).remove(&(target.to_string(), kind.to_string()));
        let op = SqlOperation {
            name: format!("op-{n:04}-{target}"),
            kind: kind.into(),
            target: target.into(),
            status: SqlOpStatus::Pending,
            error: None,
            inserted: Some(Utc::now()),
        };
        let stored = SqlOperation {
            error,
            ..op.clone()
        };
        (self.sql_ops).insert((project.to_string(), op.name.clone()), (stored, effect));
        op
    }

    /// Applies a done Cloud SQL operation's effect on instance `target`.
    /// The effects that are not a replica's move (a designation, the old
    /// primary's side, a deletion, a clone); `true` when `effect` was one.
    fn sql_side_effect(&mut self, project: &str, target: &str, effect: &SqlEffect) -> bool {
        let key = |n: &str| (project.to_string(), n.to_string());
        match effect {
            SqlEffect::DesignateDr(replica) => {
                if let Some(r) = self.sql.get_mut(&key(replica))
                    && r.role == DbRole::Replica(target.to_string())
                {
                    r.dr_replica = true;
                }
            }
            SqlEffect::OldPrimary => {}
            SqlEffect::KeepBackupsIn(location) => {
                if let Some(i) = self.sql.get_mut(&key(target)) {
                    i.backup_location = Some(location.clone());
                }
            }
            SqlEffect::Backup(location) => {
                let Some(i) = self.sql.get(&key(target)) else {
                    return true;
                };
                let now = Utc::now();
                let b = Restorable {
                    id: format!("projects/{project}/backups/{}", now.timestamp_millis()),
                    source: target.to_string(),
                    source_arn: None,
                    source_region: Some(i.region.clone()),
                    status: "SUCCESSFUL".into(),
                    ready: true,
                    earliest: Some(now),
                    latest: Some(now),
                    kms_key_id: None,
                    progress: None,
                    engine: Some("POSTGRES_16".into()),
                    engine_version: None,
                };
                let at = (location.clone(), target.to_string());
                self.sql_backups.entry(at).or_default().push(b);
            }
            SqlEffect::Delete => {
                if let Some(gone) = self.sql.remove(&key(target))
                    && let DbRole::Replica(m) = gone.role
                    && let Some(m) = self.sql.get_mut(&key(&m))
                {
                    m.replicas.retain(|r| r != target);
                }
            }
            SqlEffect::Clone(source) => {
                if !self.sql.contains_key(&key(target))
                    && let Some(src) = self.sql.get(&key(source)).cloned()
                {
                    let mut c = src;
                    c.name = target.to_string();
                    c.role = DbRole::Primary;
                    c.replicas.clear();
                    c.dr_replica = false;
                    c.endpoint = Some(format!("{target}.fake.sql.goog"));
                    c.write_endpoint = None;
                    self.sql.insert(key(target), c);
                }
            }
            SqlEffect::Restore {
                source,
                region,
                labels,
            } => {
                if !self.sql.contains_key(&key(target)) {
                    let from = self.sql.get(&key(source)).cloned();
                    let made = SqlInstance {
                        name: target.to_string(),
                        region: region.clone(),
                        state: "RUNNABLE".into(),
                        role: DbRole::Primary,
                        replicas: Vec::new(),
                        dr_replica: false,
                        edition: from.and_then(|f| f.edition),
                        endpoint: Some(format!("{target}.{region}.fake.sql.goog")),
                        write_endpoint: None,
                        labels: labels.clone(),
                        backup_location: None,
                    };
                    self.sql.insert(key(target), made);
                }
            }
            SqlEffect::Promote { .. } | SqlEffect::Switchover => return false,
        }
        true
    }

    fn sql_effect(&mut self, project: &str, target: &str, effect: &SqlEffect) {
        let key = |n: &str| (project.to_string(), n.to_string());
        if self.sql_side_effect(project, target, effect) {
            return;
        }
        let Some(inst) = self.sql.get(&key(target)).cloned() else {
            return;
        };
        let DbRole::Replica(master) = inst.role.clone() else {
            return;
        };
        let detach = |s: &mut FakeState, name: &str, from: &str| {
            if let Some(m) = s.sql.get_mut(&key(from)) {
                m.replicas.retain(|r| r != name);
            }
        };
        detach(self, target, &master);
        let others: Vec<String> = (self.sql.get(&key(&master)))
            .map(|m| m.replicas.clone())
            .unwrap_or_default();
        let new = self.sql.get_mut(&key(target)).expect("read above");
        new.role = DbRole::Primary;
        new.dr_replica = false;
        match effect {
            SqlEffect::Promote { failover: true } => {
                new.replicas = others.clone();
                for r in &others {
                    if let Some(x) = self.sql.get_mut(&key(r)) {
                        x.role = DbRole::Replica(target.to_string());
                    }
                }
                if let Some(m) = self.sql.get_mut(&key(&master)) {
                    m.replicas.clear();
                }
                // The rejoin is the reconfiguration's effect: one armed to
                // fail leaves the old primary standing alone.
                let fails = (self.sql_failures)
                    .contains_key(&(master.clone(), "RECONFIGURE_OLD_PRIMARY".to_string()));
                if !fails {
                    self.sql_rejoins.push((
                        project.to_string(),
                        master.clone(),
                        target.to_string(),
                    ));
                }
            }
            SqlEffect::Switchover => {
                new.replicas = others.iter().cloned().chain([master.clone()]).collect();
                for r in &others {
                    if let Some(x) = self.sql.get_mut(&key(r)) {
                        x.role = DbRole::Replica(target.to_string());
                    }
                }
                if let Some(m) = self.sql.get_mut(&key(&master)) {
                    m.replicas.clear();
                    m.role = DbRole::Replica(target.to_string());
                    m.dr_replica = true;
                }
            }
            // A plain promotion leaves the replication cluster: its write
            // endpoint stays with the old primary.
            _ => new.write_endpoint = None,
        }
        if matches!(effect, SqlEffect::Promote { .. }) {
            // The promotion's effect on the old primary, asynchronously
            // (after a DR failover its rejoin, once its region answers).
            self.start_sql_op(
                project,
                &master,
                "RECONFIGURE_OLD_PRIMARY",
                SqlEffect::OldPrimary,
            );
        }
    }
}

/// Cloud SQL's operations: started, then done by a later read.
impl FakeCloud {
    /// Starts a Cloud SQL operation `kind` on `target`: recorded as a
    /// write, `PENDING`, its effect applied when it is done.
    fn sql_start(
        &self,
        region: &str,
        project: &str,
        target: &str,
        call: &str,
        kind: &str,
        effect: SqlEffect,
    ) -> SqlOperation {
        let _ = region;
        let mut s = self.state();
        s.writes.push(format!("{call} {target}"));
        s.start_sql_op(project, target, kind, effect)
    }

    fn sql_replica(
        s: &FakeState,
        region: &str,
        project: &str,
        name: &str,
        call: &'static str,
        dr: bool,
    ) -> Result<(), CloudError> {
        let refuse = |m: &str| {
            CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::Client,
                m.to_string(),
            )
            .with_code("FAILED_PRECONDITION")
        };
        let Some(i) = s.sql.get(&(project.to_string(), name.to_string())) else {
            return Err(CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL instance does not exist.",
            ));
        };
        if i.role == DbRole::Primary {
            return Err(refuse("The instance is not a read replica."));
        }
        if dr && !i.dr_replica {
            return Err(refuse("The replica is not its primary's DR replica."));
        }
        if (s.sql_ops.values()).any(|(o, _)| o.target == name && !o.is_done()) {
            return Err(CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::Client,
                "Operation failed because another operation was already in progress.",
            )
            .with_code("ABORTED"));
        }
        Ok(())
    }
}

#[async_trait]
impl CloudSql for FakeCloud {
    async fn describe_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<SqlInstance>, CloudError> {
        let mut s = self.enter("sqladmin:instances.get", region, name).await?;
        s.sql_rejoin();
        Ok(s.sql.get(&(project.to_string(), name.to_string())).cloned())
    }

    /// A region that is down is one Cloud SQL cannot reach: its instances
    /// are left out and it is named, as `REGION_UNREACHABLE` does.
    async fn list_sql(&self, project: &str) -> Result<SqlList, CloudError> {
        let mut s = self
            .enter("sqladmin:instances.list", "global", project)
            .await?;
        s.sql_rejoin();
        let mut out = SqlList::default();
        for i in (s.sql.iter())
            .filter(|((p, _), _)| p == project)
            .map(|(_, i)| i)
        {
            if !s.dead_regions.contains(&i.region) {
                out.instances.push(i.clone());
            } else if !out.unreachable.iter().any(|(r, _)| *r == i.region) {
                let why = format!("The region {} is unreachable.", i.region);
                out.unreachable.push((i.region.clone(), why));
            }
        }
        Ok(out)
    }

    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError> {
        {
            let s = self
                .enter("sqladmin:instances.promoteReplica", region, name)
                .await?;
            Self::sql_replica(
                &s,
                region,
                project,
                name,
                "instances.promoteReplica",
                failover,
            )?;
        }
        Ok(self.sql_start(
            region,
            project,
            name,
            "instances.promoteReplica",
            "PROMOTE_REPLICA",
            SqlEffect::Promote { failover },
        ))
    }

    async fn switchover_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        {
            let s = self
                .enter("sqladmin:instances.switchover", region, name)
                .await?;
            Self::sql_replica(&s, region, project, name, "instances.switchover", true)?;
        }
        let op = self.sql_start(
            region,
            project,
            name,
            "instances.switchover",
            "SWITCHOVER",
            SqlEffect::Switchover,
        );
        // The old primary's part runs beside it, an operation of its own.
        let mut s = self.state();
        let master = match s.sql.get(&(project.to_string(), name.to_string())) {
            Some(SqlInstance {
                role: DbRole::Replica(m),
                ..
            }) => Some(m.clone()),
            _ => None,
        };
        if let Some(m) = master {
            s.start_sql_op(project, &m, "SWITCHOVER_TO_REPLICA", SqlEffect::OldPrimary);
        }
        Ok(op)
    }

    async fn designate_dr_sql(
        &self,
        region: &str,
        project: &str,
        primary: &str,
        replica: &str,
    ) -> Result<SqlOperation, CloudError> {
        {
            let s = self
                .enter("sqladmin:instances.patch", region, primary)
                .await?;
            let follows = (s.sql.get(&(project.to_string(), replica.to_string())))
                .is_some_and(|r| r.role == DbRole::Replica(primary.to_string()));
            if !follows {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.patch",
                    primary,
                    region,
                    ErrorKind::Client,
                    format!("{replica} is not a read replica of {primary}"),
                ));
            }
        }
        Ok(self.sql_start(
            region,
            project,
            primary,
            "instances.patch",
            "UPDATE",
            SqlEffect::DesignateDr(replica.to_string()),
        ))
    }

    async fn keep_sql_backups_in(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError> {
        drop(self.enter("sqladmin:instances.patch", region, name).await?);
        let effect = SqlEffect::KeepBackupsIn(location.to_string());
        Ok(self.sql_start(region, project, name, "instances.patch", "UPDATE", effect))
    }

    async fn backup_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError> {
        drop(
            self.enter("sqladmin:backups.insertBackup", region, name)
                .await?,
        );
        let effect = SqlEffect::Backup(location.to_string());
        let call = "backups.insertBackup";
        Ok(self.sql_start(region, project, name, call, "BACKUP_VOLUME", effect))
    }

    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        point_in_time: Option<chrono::DateTime<Utc>>,
    ) -> Result<SqlOperation, CloudError> {
        {
            let mut s = self
                .enter("sqladmin:instances.clone", region, source)
                .await?;
            if let Some(i) = s.sql.get(&(project.to_string(), source.to_string()))
                && i.role != DbRole::Primary
            {
                // Replicas keep no backups, which a clone is made from.
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.clone",
                    source,
                    region,
                    ErrorKind::Precondition,
                    "The requested operation is not valid for a replica instance.",
                ));
            }
            if s.sql
                .contains_key(&(project.to_string(), target.to_string()))
            {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.clone",
                    target,
                    region,
                    ErrorKind::Client,
                    "The Cloud SQL instance already exists.",
                ));
            }
            // Cloud SQL refuses a point outside the source's recovery
            // window (the fake's: `recovery_window`'s).
            let now = Utc::now();
            // The earliest edge as `recovery_window` said it a moment ago.
            let window = (now - chrono::Duration::days(7) - chrono::Duration::minutes(1))..=now;
            if let Some(at) = point_in_time.filter(|at| !window.contains(at)) {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.clone",
                    source,
                    region,
                    ErrorKind::Client,
                    format!(
                        "Invalid request: the point in time {at} is outside the instance's recovery window."
                    ),
                ));
            }
            s.clone_points.insert(target.to_string(), point_in_time);
        }
        Ok(self.sql_start(
            region,
            project,
            target,
            "instances.clone",
            "CLONE",
            SqlEffect::Clone(source.to_string()),
        ))
    }

    async fn sql_backups(
        &self,
        region: &str,
        _project: &str,
        name: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let s = self.enter("sqladmin:backups.list", region, name).await?;
        let key = (region.to_string(), name.to_string());
        let mut out = s.sql_backups.get(&key).cloned().unwrap_or_default();
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn restore_sql_backup(
        &self,
        region: &str,
        project: &str,
        target: &str,
        backup: &str,
        settings: &ReplicaPlacement,
    ) -> Result<SqlOperation, CloudError> {
        let source = {
            let s = (self.enter("sqladmin:instances.restoreBackup", region, target)).await?;
            let refuse = |kind, why: &str| {
                let op = "instances.restoreBackup";
                CloudError::new("sqladmin", op, target, region, kind, why.to_string())
            };
            if s.sql
                .contains_key(&(project.to_string(), target.to_string()))
            {
                return Err(refuse(
                    ErrorKind::Client,
                    "The Cloud SQL instance already exists.",
                ));
            }
            let found = (s.sql_backups.values().flatten()).find(|b| b.id == backup && b.ready);
            let Some(b) = found else {
                return Err(refuse(ErrorKind::NotFound, "The backup does not exist."));
            };
            b.source.clone()
        };
        let effect = SqlEffect::Restore {
            source,
            region: region.to_string(),
            labels: settings.tags.clone(),
        };
        let call = "instances.restoreBackup";
        Ok(self.sql_start(region, project, target, call, "RESTORE_VOLUME", effect))
    }

    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        {
            let s = self
                .enter("sqladmin:instances.delete", region, name)
                .await?;
            if !s.sql.contains_key(&(project.to_string(), name.to_string())) {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.delete",
                    name,
                    region,
                    ErrorKind::NotFound,
                    "The Cloud SQL instance does not exist.",
                ));
            }
            if (s.sql_ops.values()).any(|(o, _)| o.target == name && !o.is_done()) {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.delete",
                    name,
                    region,
                    ErrorKind::Precondition,
                    "Operation failed because another operation was already in progress.",
                ));
            }
        }
        Ok(self.sql_start(
            region,
            project,
            name,
            "instances.delete",
            "DELETE",
            SqlEffect::Delete,
        ))
    }

    async fn recovery_window(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<RecoveryWindow, CloudError> {
        let s = self
            .enter("sqladmin:instances.getLatestRecoveryTime", region, name)
            .await?;
        if s.sql_no_pitr
            .contains(&(project.to_string(), name.to_string()))
        {
            return Err(CloudError::new(
                "sqladmin",
                "instances.getLatestRecoveryTime",
                name,
                region,
                ErrorKind::Client,
                "Point-in-time recovery is not enabled for the instance.",
            ));
        }
        if !s.sql.contains_key(&(project.to_string(), name.to_string())) {
            return Err(CloudError::new(
                "sqladmin",
                "instances.getLatestRecoveryTime",
                name,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL instance does not exist.",
            ));
        }
        let now = Utc::now();
        Ok(RecoveryWindow {
            earliest: Some(now - chrono::Duration::days(7)),
            latest: now - chrono::Duration::seconds(1),
        })
    }

    async fn operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<SqlOperation, CloudError> {
        let mut s = self
            .enter("sqladmin:operations.get", region, operation)
            .await?;
        let key = (project.to_string(), operation.to_string());
        let Some((op, effect)) = s.sql_ops.get(&key).cloned() else {
            return Err(CloudError::new(
                "sqladmin",
                "operations.get",
                operation,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL operation does not exist.",
            ));
        };
        let next = match op.status {
            SqlOpStatus::Pending => SqlOpStatus::Running,
            _ => SqlOpStatus::Done,
        };
        if next == SqlOpStatus::Done && !op.is_done() && op.error.is_none() {
            s.sql_effect(project, &op.target, &effect);
        }
        let op = SqlOperation { status: next, ..op };
        s.sql_ops.insert(key, (op.clone(), effect));
        let shown = if op.is_done() {
            op
        } else {
            SqlOperation { error: None, ..op }
        };
        Ok(shown)
    }

    async fn operations(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<SqlOperation>, CloudError> {
        let s = self.enter("sqladmin:operations.list", region, name).await?;
        let mut out: Vec<SqlOperation> = (s.sql_ops.iter())
            .filter(|((p, _), (o, _))| p == project && o.target == name)
            .map(|(_, (o, _))| {
                if o.is_done() {
                    o.clone()
                } else {
                    SqlOperation {
                        error: None,
                        ..o.clone()
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    async fn sql_replica_lag(
        &self,
        region: &str,
        project: &str,
        name: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let replica = {
            let s = self
                .enter("monitoring:timeSeries.list", region, name)
                .await?;
            (s.sql.get(&(project.to_string(), name.to_string())))
                .is_some_and(|i| i.role != DbRole::Primary)
        };
        if !replica {
            // A primary publishes no replica_lag: no points, never a zero.
            return Ok(LagReading {
                max: None,
                latest: None,
                datapoints: 0,
                window,
            });
        }
        self.replica_lag(region, name, window).await
    }
}
