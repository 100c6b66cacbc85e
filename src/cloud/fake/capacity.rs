//! The capacity kinds in the fake that are not on the role's port yet
//! (Cloud Run services, managed instance groups, Kubernetes workloads),
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

/// The fake's EKS: an update applies at once (its answer `Successful`, the
/// node group `ACTIVE`) unless the world is timed, where the node group is
/// `UPDATING` and the update `InProgress` until the model's draw for
/// `eks:NodegroupActive` completes.
impl FakeCloud {
    /// Seeds Cloud Run service `name` in `region`, serving its first
    /// revision with a service-level floor of `min`.
    pub fn add_run_service(&self, project: &str, region: &str, name: &str, min: u32) {
        self.state().run.insert(
            (project.into(), region.into(), name.into()),
            RunService {
                name: name.into(),
                region: region.into(),
                floor: min,
                min_instances: 0,
                max_instances: Some(100),
                generation: 1,
                observed_generation: 1,
                latest_created: format!("{name}-00001-aaa"),
                latest_ready: format!("{name}-00001-aaa"),
                ready_state: "CONDITION_SUCCEEDED".into(),
                ready_message: None,
                reconciling: false,
                etag: "e1".into(),
                labels: BTreeMap::new(),
            },
        );
    }

    /// Arms the next change of service `name` to fail with `message`.
    pub fn fail_run(&self, project: &str, region: &str, name: &str, message: &str) {
        self.state()
            .run_failures
            .insert((project.into(), region.into(), name.into()), message.into());
    }
}

#[async_trait]
impl CloudRun for FakeCloud {
    async fn describe_run(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<RunService>, CloudError> {
        let mut s = self.enter("run:services.get", region, name).await?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        // A change goes on whoever reads: it ends at the second read.
        s.run_progress(&key);
        Ok(s.run.get(&key).cloned())
    }

    async fn set_run_floor(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
    ) -> Result<(), CloudError> {
        self.run_patch((region, project, name), Err(()), |svc| {
            svc.floor = min;
            svc.reconciling = true;
            svc.ready_state = "CONDITION_RECONCILING".into();
            svc.ready_message = None;
        })
        .await
    }

    async fn set_run_labels(
        &self,
        region: &str,
        project: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        etag: &str,
    ) -> Result<(), CloudError> {
        self.run_patch((region, project, name), Ok(etag), |svc| {
            svc.labels = labels.clone();
            // Metadata: no rollout.
            svc.observed_generation = svc.generation;
        })
        .await
    }
}

impl FakeCloud {
    /// One `services.patch` of Cloud Run service `name`: refused when it
    /// is missing, when `etag` (`Ok`: a labels patch) is stale, or when it
    /// changes the floor (`Err`) while a change is reconciled (Cloud Run's
    /// 409); `change` makes the next generation.
    async fn run_patch(
        &self,
        (region, project, name): (&str, &str, &str),
        etag: Result<&str, ()>,
        change: impl FnOnce(&mut RunService),
    ) -> Result<(), CloudError> {
        let mut s = self.enter("run:services.patch", region, name).await?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        let refuse = |kind, code: &str, m: &str| {
            CloudError::new("run", "services.patch", name, region, kind, m).with_code(code)
        };
        let Some(mut svc) = s.run.get(&key).cloned() else {
            return Err(refuse(
                ErrorKind::NotFound,
                "NOT_FOUND",
                "service not found",
            ));
        };
        let refused = match etag {
            Ok(e) => (e != svc.etag).then_some("the service changed since it was read"),
            Err(()) => (svc.reconciling).then_some("the service is being reconciled"),
        };
        if let Some(why) = refused {
            return Err(refuse(ErrorKind::Client, "ABORTED", why));
        }
        let what = if etag.is_ok() { "labels" } else { "scaling" };
        s.writes.push(format!("services.patch {what} {name}"));
        svc.generation += 1;
        svc.etag = format!("e{}", svc.generation);
        change(&mut svc);
        if svc.reconciling {
            s.run_ops.insert(key.clone(), 0);
        }
        s.run.insert(key, svc);
        Ok(())
    }
}

impl FakeState {
    /// Counts a read of Cloud Run service `key` while a change of it is
    /// reconciled, and ends the change at the second: the service's floor
    /// in effect, or, when a failure was armed, `Ready` failed naming it.
    fn run_progress(&mut self, key: &(String, String, String)) {
        let s = self;
        let Some(reads) = s.run_ops.get(key).copied() else {
            return;
        };
        if reads == 0 {
            s.run_ops.insert(key.clone(), 1);
            return;
        }
        s.run_ops.remove(key);
        let Some(svc) = s.run.get_mut(key) else {
            return;
        };
        svc.reconciling = false;
        svc.observed_generation = svc.generation;
        match s.run_failures.remove(key) {
            Some(m) => {
                svc.ready_state = "CONDITION_FAILED".into();
                svc.ready_message = Some(m);
            }
            None => svc.ready_state = "CONDITION_SUCCEEDED".into(),
        }
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

/// A workload whose pods all started: the controller saw its last change
/// and every replica is updated and available.
pub fn settle_workload(w: &mut Workload) {
    w.observed = w.generation;
    (w.updated, w.available, w.ready) = (w.replicas, w.replicas, w.replicas);
}

impl FakeCloud {
    /// Enters a workload call: the fake's ticks, then a cluster that does
    /// not answer fails as a connection would.
    async fn enter_workload(
        &self,
        label: &'static str,
        region: &str,
        w: &WorkloadRef,
    ) -> Result<MutexGuard<'_, FakeState>, CloudError> {
        let s = self.enter(label, region, &w.to_string()).await?;
        if s.clusters_down.contains(&w.cluster) {
            let (service, operation) = label.split_once(':').unwrap_or(("", label));
            return Err(CloudError::new(
                service,
                operation,
                w.to_string(),
                region,
                ErrorKind::Connection,
                "connection refused: nothing answers at the endpoint",
            ));
        }
        Ok(s)
    }
}

#[async_trait]
impl Workloads for FakeCloud {
    async fn describe_workload(
        &self,
        region: &str,
        w: &WorkloadRef,
    ) -> Result<Option<Workload>, CloudError> {
        let mut s = self.enter_workload("k8s:workloads.get", region, w).await?;
        let key = (region.to_string(), w.to_string());
        if self.timing.is_none()
            && let Some(left) = s.workload_settling.get_mut(&key)
        {
            *left = left.saturating_sub(1);
            if *left == 0 {
                s.workload_settling.remove(&key);
                if let Some(w) = s.workloads.get_mut(&key) {
                    settle_workload(w);
                }
            }
        }
        Ok(s.workloads.get(&key).cloned())
    }

    async fn scale_workload(
        &self,
        region: &str,
        w: &WorkloadRef,
        replicas: u32,
    ) -> Result<(), CloudError> {
        let mut s = self
            .enter_workload("k8s:workloads/scale.patch", region, w)
            .await?;
        let key = (region.to_string(), w.to_string());
        let failure = s.workload_failures.remove(&key);
        let name = w.to_string();
        let read = (s.workloads.get_mut(&key))
            .ok_or_else(|| not_found("k8s", "workloads/scale.patch", &name, region))?;
        if read.replicas != replicas {
            read.generation += 1;
        }
        read.replicas = replicas;
        read.updated = read.updated.min(replicas);
        read.available = read.available.min(replicas);
        read.ready = read.ready.min(replicas);
        match failure {
            Some(why) => {
                read.observed = read.generation;
                read.failed = Some(("ProgressDeadlineExceeded".into(), why));
            }
            None => match &self.timing {
                Some(t) => {
                    t.start(format!("k8s:{region} {name}"), "k8s:WorkloadReady");
                }
                None => {
                    s.workload_settling.insert(key, 1);
                }
            },
        }
        s.writes.push(format!("scale {name} {replicas}"));
        Ok(())
    }

    async fn bound_autoscaler(
        &self,
        region: &str,
        w: &WorkloadRef,
        autoscaler: &str,
        (min, max): (u32, u32),
    ) -> Result<(), CloudError> {
        let mut s = (self.enter_workload("k8s:horizontalpodautoscalers.patch", region, w)).await?;
        let name = w.to_string();
        let hpa = (s.workloads.get_mut(&(region.to_string(), name.clone())))
            .and_then(|w| w.autoscaler.as_mut())
            .filter(|a| a.name == autoscaler)
            .ok_or_else(|| {
                not_found("k8s", "horizontalpodautoscalers.patch", autoscaler, region)
            })?;
        (hpa.min, hpa.max) = (min.max(1), max.max(min).max(1));
        s.writes.push(format!("hpa {name} {min}/{max}"));
        Ok(())
    }

    async fn annotate_workload(
        &self,
        region: &str,
        w: &WorkloadRef,
        marks: &BTreeMap<String, Option<String>>,
    ) -> Result<(), CloudError> {
        let mut s = self
            .enter_workload("k8s:workloads.patch", region, w)
            .await?;
        let name = w.to_string();
        let read = (s.workloads.get_mut(&(region.to_string(), name.clone())))
            .ok_or_else(|| not_found("k8s", "workloads.patch", &name, region))?;
        for (k, v) in marks {
            match v {
                Some(v) => read.marks.insert(k.clone(), v.clone()),
                None => read.marks.remove(k),
            };
        }
        let verb = if marks.values().all(Option::is_some) {
            "annotate"
        } else {
            "unannotate"
        };
        s.writes.push(format!("{verb} {name}"));
        Ok(())
    }
}
