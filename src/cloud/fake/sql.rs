//! Cloud SQL in the fake: instances, their long-running operations and the
//! effects an operation applies when done (promotion, switchover, restore).

use super::*;

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

    #[allow(clippy::result_large_err)]
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
        self.tick("sqladmin:instances.get", region, name).await?;
        let mut s = self.state();
        s.reach("sqladmin", "instances.get", name, region)?;
        s.sql_rejoin();
        Ok(s.sql.get(&(project.to_string(), name.to_string())).cloned())
    }

    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.promoteReplica", region, name)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.promoteReplica", name, region)?;
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
        self.tick("sqladmin:instances.switchover", region, name)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.switchover", name, region)?;
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
        self.tick("sqladmin:instances.patch", region, primary)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.patch", primary, region)?;
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

    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        _point_in_time: Option<chrono::DateTime<Utc>>,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.clone", region, source)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.clone", source, region)?;
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

    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.delete", region, name).await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.delete", name, region)?;
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
        self.tick("sqladmin:instances.getLatestRecoveryTime", region, name)
            .await?;
        let s = self.state();
        s.reach("sqladmin", "instances.getLatestRecoveryTime", name, region)?;
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
        self.tick("sqladmin:operations.get", region, operation)
            .await?;
        let mut s = self.state();
        s.reach("sqladmin", "operations.get", operation, region)?;
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
        self.tick("sqladmin:operations.list", region, name).await?;
        let s = self.state();
        s.reach("sqladmin", "operations.list", name, region)?;
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
        self.tick("monitoring:timeSeries.list", region, name)
            .await?;
        let replica = {
            let s = self.state();
            s.reach("monitoring", "timeSeries.list", name, region)?;
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
