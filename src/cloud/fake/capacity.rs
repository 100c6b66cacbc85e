//! The capacity kind in the fake that is not on the role's port yet
//! (managed instance groups),
//! with the delays before new capacity serves that their APIs show, and
//! the load balancers' target groups (`groups.rs` models the kinds on the
//! port).

use super::*;

/// A target group counts the members of the groups and services registered
/// in it: those in service (tasks running) healthy, unless it was made to
/// fail (then `unhealthy` with its reason), the others still registering
/// (`initial: Elb.RegistrationInProgress`), as ELB answers.
#[async_trait]
impl Balancers for FakeCloud {
    async fn target_health(&self, region: &str, arn: &str) -> Result<TargetCount, CloudError> {
        let s = (self.enter("elasticloadbalancing:DescribeTargetHealth", region, arn)).await?;
        let (serving, registered) = s.scaled_behind(region, arn);
        let mut count = TargetCount {
            arn: arn.into(),
            healthy: serving,
            registered,
            reasons: BTreeMap::new(),
            unread: None,
        };
        if let Some(why) = s.failing_targets.get(arn).filter(|_| serving > 0) {
            count.healthy = 0;
            count.reasons.insert(format!("unhealthy: {why}"), serving);
        }
        if registered > serving {
            let starting = "initial: Elb.RegistrationInProgress".to_string();
            count.reasons.insert(starting, registered - serving);
        }
        Ok(count)
    }
}

/// How many reads of a fake group's instances a new instance takes to run.
const MIG_READS_TO_RUN: u32 = 2;

#[async_trait]
impl InstanceGroups for FakeCloud {
    async fn describe_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigGroup>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.get";
        self.tick("compute:regionInstanceGroupManagers.get", region, name)
            .await?;
        let s = self.state();
        s.reach("compute", OP, name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        Ok(s.migs.get(&key).map(|g| g.view(region, name)))
    }

    async fn mig_instances(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<MigInstance>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.listManagedInstances";
        self.tick(
            "compute:regionInstanceGroupManagers.listManagedInstances",
            region,
            name,
        )
        .await?;
        let mut s = self.state();
        s.reach("compute", OP, name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        let Some(g) = s.migs.get_mut(&key) else {
            return Err(CloudError::new(
                "compute",
                OP,
                name,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/instanceGroupManagers/{name}' was not found"
                ),
            ));
        };
        let out = (g.instances.iter())
            .map(|(n, left, errors)| {
                let (action, status) = match (errors.is_empty(), *left) {
                    (false, _) => ("CREATING", None),
                    (true, 0) => ("NONE", Some("RUNNING".to_string())),
                    (true, 1) => ("VERIFYING", Some("RUNNING".to_string())),
                    (true, _) => ("CREATING", None),
                };
                MigInstance {
                    name: n.clone(),
                    action: action.into(),
                    status,
                    errors: errors.clone(),
                }
            })
            .collect();
        for (_, left, errors) in g.instances.iter_mut() {
            if errors.is_empty() {
                *left = left.saturating_sub(1);
            }
        }
        Ok(out)
    }

    async fn resize_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.tick("compute:regionInstanceGroupManagers.resize", region, name)
            .await?;
        self.mig_start(
            (project, region, name),
            "regionInstanceGroupManagers.resize",
            MigEffect::Resize(size),
            request_id,
        )
    }

    async fn mig_autoscaler(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigAutoscaler>, CloudError> {
        let s = self
            .enter("compute:regionAutoscalers.get", region, name)
            .await?;
        Ok((s.migs.iter())
            .filter(|((p, r, _), _)| p == project && r == region)
            .find_map(|(_, g)| g.autoscaler.clone().filter(|a| a.0 == name))
            .map(|(name, min, max)| MigAutoscaler { name, min, max }))
    }

    async fn set_autoscaler_min(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.tick("compute:regionAutoscalers.patch", region, name)
            .await?;
        let group = {
            let s = self.state();
            (s.migs.iter())
                .find(|((p, r, _), g)| {
                    p == project
                        && r == region
                        && g.autoscaler.as_ref().is_some_and(|a| a.0 == name)
                })
                .map(|((_, _, g), _)| g.clone())
        };
        let Some(group) = group else {
            return Err(CloudError::new(
                "compute",
                "regionAutoscalers.patch",
                name,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/autoscalers/{name}' was not found"
                ),
            ));
        };
        self.mig_start(
            (project, region, &group),
            "regionAutoscalers.patch",
            MigEffect::AutoscalerMin(min),
            request_id,
        )
    }

    async fn mig_operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<MigOperation, CloudError> {
        const OP: &str = "regionOperations.get";
        self.tick("compute:regionOperations.get", region, operation)
            .await?;
        let mut s = self.state();
        s.reach("compute", OP, operation, region)?;
        let key = (
            project.to_string(),
            region.to_string(),
            operation.to_string(),
        );
        let Some((op, effect)) = s.mig_ops.get(&key).cloned() else {
            return Err(CloudError::new(
                "compute",
                OP,
                operation,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/operations/{operation}' was not found"
                ),
            ));
        };
        if op.done {
            return Ok(op);
        }
        // The group the operation acts on is named by the operation's kind
        // and the key it was stored under (`op.kind` carries it).
        let group = op.kind.rsplit(' ').next().unwrap_or_default().to_string();
        if let Some(g) = s
            .migs
            .get_mut(&(project.to_string(), region.to_string(), group))
        {
            match effect {
                MigEffect::Resize(n) => g.set_target(n, MIG_READS_TO_RUN),
                MigEffect::AutoscalerMin(min) => {
                    if let Some(a) = g.autoscaler.as_mut() {
                        a.1 = min;
                        let size = g.target_size.max(min).min(a.2);
                        g.set_target(size, MIG_READS_TO_RUN);
                    }
                }
            }
        }
        let done = MigOperation { done: true, ..op };
        s.mig_ops.insert(key, (done.clone(), effect));
        Ok(done)
    }
}

impl FakeCloud {
    /// Starts a Compute operation on group `(project, region, group)`:
    /// recorded as a write, not done; a request id seen before answers the
    /// operation it made.
    fn mig_start(
        &self,
        (project, region, group): (&str, &str, &str),
        call: &'static str,
        effect: MigEffect,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        let mut s = self.state();
        s.reach("compute", call, group, region)?;
        if let Some(key) = s.mig_requests.get(request_id).cloned()
            && let Some((op, _)) = s.mig_ops.get(&key)
        {
            return Ok(op.clone());
        }
        let key = (project.to_string(), region.to_string(), group.to_string());
        if !s.migs.contains_key(&key) {
            return Err(CloudError::new(
                "compute",
                call,
                group,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/instanceGroupManagers/{group}' was not found"
                ),
            ));
        }
        s.writes.push(format!("{call} {group}"));
        let n = s.mig_ops.len() + 1;
        let op = MigOperation {
            name: format!("operation-{n:04}"),
            kind: format!("compute.{call} {group}"),
            done: false,
            error: None,
        };
        let op_key = (project.to_string(), region.to_string(), op.name.clone());
        s.mig_ops.insert(op_key.clone(), (op.clone(), effect));
        s.mig_requests.insert(request_id.to_string(), op_key);
        Ok(op)
    }
}
