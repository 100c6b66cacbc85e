"""moto server with the Aurora Global Database operations moto lacks, ECS
services that take time to scale, EKS node groups' tags, and RDS's pending
maintenance, answering one request at a time (MOTO_LOCK says why).

Why: moto 5.2 models global clusters (CreateGlobalCluster, members joined by
CreateDBCluster --global-cluster-identifier, RemoveFromGlobalCluster) but
not the two ways AWS moves a global cluster's writer:

- SwitchoverGlobalCluster (planned: the secondaries are caught up first,
  no data is lost, the old writer becomes a secondary);
- FailoverGlobalCluster (unplanned with AllowDataLoss=true: the target
  becomes the writer at once, with whatever it has; the old writer, when it
  comes back, rejoins as a secondary, and AWS keeps a snapshot of its volume
  named `rds:unplanned-global-failover-<cluster>-<timestamp>`. With
  Switchover=true it is a switchover by another name).

MiniStack 1.5.33 (PyPI) implements both, but its switchover needs a MySQL
container per cluster (Docker, which this world has not) and answers
InvalidDBClusterStateFault without one; its unplanned failover flips the
writer at once, with no time passing and no FailoverState. So the world
runs moto with these two operations added, on moto's own state, with AWS's
answer shapes and errors (the botocore model of the RDS API is what moto
serializes with):

- both take time: the global cluster's Status is `switching-over` or
  `failing-over` and its `FailoverState` names the move (Status `pending`
  then `switching-over`/`failing-over`, FromDbClusterArn, ToDbClusterArn,
  IsDataLossAllowed) until DRCTL_MOTO_GLOBAL_SWITCH_SECONDS (default 3) have
  passed; the members' IsWriter flags change only then, read lazily on the
  next request (no thread);
- a second move while one is under way is InvalidGlobalClusterStateFault;
  a target that is not a secondary member of the global cluster is
  InvalidParameterValue; an unknown global cluster GlobalClusterNotFoundFault
  (404); neither AllowDataLoss nor Switchover, or both, is
  InvalidParameterCombination.

Also fixed: RestoreDBClusterToPointInTime (a drill clones a global
secondary with it, RestoreType copy-on-write) copied every attribute of its
source, so a clone of a secondary joined the global cluster as one more
member and took the source's tags; the copy is now a standalone cluster with
only the tags asked for, as on AWS, and a target that exists is
DBClusterAlreadyExistsFault (moto replaced it).

Not modelled: replication itself (no data moves; the lag a run reads is the
lag publisher's AuroraGlobalDBRPOLag/AuroraGlobalDBReplicationLag, see
lag_publisher.py), the old writer being unreachable (the fault proxy drops
its region instead), writer endpoints changing their DNS, engine version
checks, and global write forwarding.

ECS services (an `[[ecs_service]]` is scaled by UpdateService desiredCount).
moto 5.2's UpdateService sets runningCount to the new desiredCount at once
and never touches the service's PRIMARY deployment (its desiredCount,
runningCount and rolloutState stay as at creation); CreateService leaves
runningCount 0 and the deployment IN_PROGRESS for ever. What ECS does,
after the Amazon ECS API Reference (UpdateService; the Service and
Deployment data types: desiredCount, runningCount, pendingCount,
rolloutState, rolloutStateReason, failedTasks; events, at most 100, newest
first) and the Developer Guide (service deployments: a new deployment is
started by a new task definition, platform version or deployment
configuration, or by forceNewDeployment, not by a desired count; task
lifecycle: PENDING, then RUNNING; the deployment circuit breaker's "ECS
deployment circuit breaker: tasks failed to start."), as modelled here:

- CreateService: the service is steady at once: runningCount =
  desiredCount, pendingCount 0, its PRIMARY deployment COMPLETED ("ECS
  deployment ecs-svc/... completed."), so a seeded service reads as one
  that has been running a while (AWS takes a minute or so; not modelled);
- UpdateService changing desiredCount (a scale): the service's and the
  PRIMARY deployment's desiredCount change at once; runningCount (service
  and deployment) stays the old count and pendingCount is the tasks still
  to start, until DRCTL_MOTO_ECS_SECONDS (default 2) have passed, read
  lazily on the next DescribeServices (or UpdateService, DescribeClusters,
  ListServices, DeleteService; no thread); then runningCount is the new
  count, pendingCount 0 and an event says "(service S) has reached a steady
  state.". No new deployment is made and the PRIMARY deployment's
  rolloutState is left as it was (COMPLETED for seeded services). A scale
  while another is under way starts from the running count of that moment.
  An UpdateService that leaves desiredCount as it is leaves a scale under
  way alone (moto set runningCount at once). The cluster's
  runningTasksCount and pendingTasksCount follow;
- a failed scale, armed over HTTP (below): when its time is up the PRIMARY
  deployment reads rolloutState FAILED, rolloutStateReason "ECS deployment
  circuit breaker: tasks failed to start." and failedTasks > 0 (the tasks
  that did not start), runningCount stays the old count, pendingCount 0,
  desiredCount stays the asked one, and an event says "(service S)
  (deployment ecs-svc/...) deployment failed: tasks failed to start.". A
  later scale that completes makes the deployment COMPLETED again with
  failedTasks 0 (the Reference: the count resets once tasks run). An
  armed failure is used by the first scale after it, even one that another
  scale replaces before its time is up. This is a
  simplification chosen for tests: on AWS the circuit breaker watches a
  deployment while it is IN_PROGRESS, and tasks of a scale that cannot
  start show as a stuck runningCount, service events and stopped tasks;
- UpdateService of a service that does not exist is
  ServiceNotFoundException ("Service not found."), of a cluster that does
  not exist ClusterNotFoundException (moto's own answers, as AWS sends),
  of a deleted (INACTIVE) service ServiceNotActiveException (moto updated
  it).
  Tagging a service (TagResource, UntagResource, DescribeServices
  include=TAGS) needs the long ARN format
  (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE), which moto uses
  unless MOTO_ECS_NEW_ARN=false or the serviceLongArnFormat account setting
  is disabled.

Not modelled for ECS: tasks themselves (ListTasks shows none of a service's
tasks), new deployments (a new task definition or forceNewDeployment keeps
moto's single deployment), rollback by the circuit breaker, capacity, load
balancers and health checks, service auto scaling.

HTTP routes for tests, on the same port (JSON in, JSON out; every other
request goes to moto as before):

    POST /_drctl/ecs/fail    {"region": "us-east-1", "cluster": "orders-ecs-use1",
                              "service": "orders-workers"}
         arms the next scale of that service (cluster and service by name or
         ARN) to fail; optional "failedTasks" (>= 1; default: the tasks the
         scale would start, at least 1) and "reason" (default: the circuit
         breaker's). 200 {"armed": {...}} (failedTasks null: the default);
         404 {"error": ...} when no such service exists; 400 on a bad body.
    GET  /_drctl/ecs/fail    {"armed": [...]}: the failures armed and not yet used.
    POST /_drctl/ecs/clear   {} clears every armed failure, or one with
                             {"region", "cluster", "service"}; 200 {"cleared": [...]}.
                             A scale already under way keeps its outcome.
         (DELETE /_drctl/ecs/fail does the same.)
    GET  /_drctl/ecs/config  {"seconds": 2.0}
    POST /_drctl/ecs/config  {"seconds": 0.5} sets DRCTL_MOTO_ECS_SECONDS for
                             scales asked from now on.

A failure is armed on the service itself: moto's reset (POST
/moto-api/reset) or deleting the service drops it.

Elastic Load Balancing v2: moto registers an Auto Scaling group's instances
in the target groups attached to it and reports every registered running
instance `healthy` at once; nothing fails a health check. A test makes a
target group's registered targets fail theirs, as AWS reports it
(`DescribeTargetHealth`: State `unhealthy`, Reason
`Target.FailedHealthChecks`, "Health checks failed"), until cleared:

    POST /_drctl/elbv2/health {"arn": TARGET_GROUP_ARN,
                               "reason": "Target.FailedHealthChecks"}
         (a reason null or absent: its targets pass again); 200 {"failing": [...]}.
    GET  /_drctl/elbv2/health {"failing": [...]}

Run as moto_server is:  python moto_ext.py -H 127.0.0.1 -p 5000
Tested by test_moto_ext.py with boto3 (not drctl's client).
"""
import datetime
import json
import os
import sys
import threading
import time
import uuid

from moto.core.responses import EmptyResult
from moto.core.utils import utcnow as _utcnow
from moto.ecs import exceptions as ecs_exc
from moto.ecs import models as ecs_models
from moto.eks import models as eks_models
from moto.elbv2 import models as elbv2_models
from moto.eks.responses import EKSResponse
from moto.rds import exceptions as rds_exc
from moto.rds import models as rds_models
from moto.rds.responses import RDSResponse

import moto_backups  # cross-Region backups and snapshot copies (moto_backups.py)

MARKER = "drctl moto extension: SwitchoverGlobalCluster, FailoverGlobalCluster, ECS scaling"
SWITCH_SECONDS = float(os.environ.get("DRCTL_MOTO_GLOBAL_SWITCH_SECONDS", "3"))


class GlobalClusterNotFound(rds_exc.RDSClientError):
    """AWS's answer for an unknown global cluster (HTTP 404)."""

    code = 404

    def __init__(self, ident):
        super().__init__("GlobalClusterNotFoundFault", f"Global cluster {ident} not found.")


class GlobalClusterBusy(rds_exc.RDSClientError):
    """AWS's answer while the global cluster is already moving its writer."""

    def __init__(self, ident, status):
        super().__init__(
            "InvalidGlobalClusterStateFault",
            f"Global cluster {ident} is in {status} state and cannot be switched over or failed over.",
        )


def _global_cluster(ident):
    """The global cluster named by identifier or ARN, from any region's backend."""
    name = ident.split(":")[-1].lower() if ident.startswith("arn:") else ident.lower()
    for account in rds_models.rds_backends.values():
        for backend in account.values():
            gc = backend.global_clusters.get(name)
            if gc is not None:
                return gc
    raise GlobalClusterNotFound(ident)


def _member(gc, ident):
    """The member of `gc` named by cluster ARN or identifier."""
    for m in gc.members:
        if ident in (m.db_cluster_arn, m.db_cluster_identifier):
            return m
    raise rds_exc.InvalidParameterValue(
        f"The specified target cluster {ident} is not a secondary cluster of global cluster "
        f"{gc.global_cluster_identifier}."
    )


def settle(gc):
    """Finishes a move whose time has come (called before every read or write)."""
    move = getattr(gc, "_drctl_move", None)
    if not move or time.monotonic() < move["done_at"]:
        if move:
            gc.failover_state["Status"] = move["phase"]
        return
    old, new = move["from"], move["to"]
    old.is_writer = False
    new.is_writer = True
    # The secondary's replication source is the writer (moto keeps none for
    # global members; the flags above are what DescribeGlobalClusters shows).
    if move["data_loss"]:
        _unplanned_snapshot(old)
    gc.status = "available"
    gc.failover_state = None
    gc._drctl_move = None


def _unplanned_snapshot(old):
    """The snapshot AWS keeps of the old writer's volume after an unplanned failover."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M")
    name = f"rds:unplanned-global-failover-{old.db_cluster_identifier}-{stamp}"
    try:
        old.backend.create_db_cluster_snapshot(
            old.db_cluster_identifier, name, snapshot_type="automated"
        )
    except Exception as e:  # a snapshot of the same minute exists: AWS keeps one
        print(f"moto_ext: snapshot {name}: {e}", file=sys.stderr)


def start_move(gc_ident, target, data_loss):
    """Starts moving `gc`'s writer to `target`; returns the global cluster."""
    gc = _global_cluster(gc_ident)
    settle(gc)
    if getattr(gc, "_drctl_move", None):
        raise GlobalClusterBusy(gc.global_cluster_identifier, gc.status)
    to = _member(gc, target)
    if to.is_writer:
        raise rds_exc.InvalidParameterValue(
            f"The specified target cluster {target} is already the primary cluster of global "
            f"cluster {gc.global_cluster_identifier}."
        )
    writers = [m for m in gc.members if m.is_writer]
    if not writers:
        raise rds_exc.InvalidParameterValue(
            f"Global cluster {gc.global_cluster_identifier} has no primary cluster."
        )
    phase = "failing-over" if data_loss else "switching-over"
    gc.status = phase
    gc.failover_state = {
        "Status": "pending",
        "FromDbClusterArn": writers[0].db_cluster_arn,
        "ToDbClusterArn": to.db_cluster_arn,
        "IsDataLossAllowed": bool(data_loss),
    }
    gc._drctl_move = {
        "from": writers[0],
        "to": to,
        "data_loss": bool(data_loss),
        "phase": phase,
        "done_at": time.monotonic() + SWITCH_SECONDS,
    }
    return gc


def _truthy(v):
    return str(v).lower() == "true"


def switchover_global_cluster(self):
    p = self.params
    gc = start_move(p["GlobalClusterIdentifier"], p["TargetDbClusterIdentifier"], False)
    return rds_models_action({"GlobalCluster": gc})


def failover_global_cluster(self):
    p = self.params
    has_loss, has_switch = "AllowDataLoss" in p, "Switchover" in p
    if has_loss == has_switch or not (_truthy(p.get("AllowDataLoss")) or _truthy(p.get("Switchover"))):
        raise rds_exc.InvalidParameterCombination(
            "Specify exactly one of AllowDataLoss or Switchover, set to true."
        )
    data_loss = _truthy(p.get("AllowDataLoss"))
    gc = start_move(p["GlobalClusterIdentifier"], p["TargetDbClusterIdentifier"], data_loss)
    return rds_models_action({"GlobalCluster": gc})


def remove_from_global_cluster(self):
    """RemoveFromGlobalCluster from any region: moto looks for the global
    cluster only in the calling region's backend (they live in us-east-1's),
    so a detach called in the surviving region, the one that matters when
    the home region is down, found nothing and answered an empty result. The
    detached cluster is a standalone writer, as on AWS."""
    p = self.params
    gc = _global_cluster(p["GlobalClusterIdentifier"])
    settle(gc)
    if getattr(gc, "_drctl_move", None):
        raise GlobalClusterBusy(gc.global_cluster_identifier, gc.status)
    ident = p["DbClusterIdentifier"]
    member = None
    for m in gc.members:
        if ident in (m.db_cluster_arn, m.db_cluster_identifier):
            member = m
    if member is None:
        raise rds_exc.InvalidParameterValue(
            f"The specified cluster {ident} is not a member of global cluster "
            f"{gc.global_cluster_identifier}."
        )
    gc.members.remove(member)
    member.is_writer = True
    member.global_cluster_identifier = None
    return rds_models_action({"GlobalCluster": gc})


_create_global_cluster = RDSResponse.create_global_cluster


def create_global_cluster(self):
    """CreateGlobalCluster from an existing cluster in any region: moto looks
    the source up in us-east-1's backend only (where it keeps global
    clusters), so a source in us-west-2 was "not found"; and it left the
    source's IsWriter false. On AWS the source becomes the writer."""
    p = self.params
    src = p.get("SourceDBClusterIdentifier")
    if src is None:
        return _create_global_cluster(self)
    if p.get("Engine") is not None:
        raise rds_exc.InvalidParameterCombination(
            "When creating global cluster from existing db cluster, value for engineName should "
            "not be specified since it will be inherited from source cluster"
        )
    if src.startswith("arn:"):
        source = rds_models.find_cluster(src)
    else:
        source = self.backend.describe_db_clusters(db_cluster_identifier=src)[0]
    if source.global_cluster_identifier:
        raise rds_exc.InvalidParameterValue(
            f"Cluster {src} is already a member of a global cluster."
        )
    gc = self.global_backend.create_global_cluster(
        global_cluster_identifier=p["GlobalClusterIdentifier"],
        source_db_cluster_identifier=None,
        engine=source.engine,
        engine_version=source.engine_version,
        storage_encrypted=p.get("StorageEncrypted"),
        deletion_protection=p.get("DeletionProtection"),
    )
    source.global_cluster_identifier = gc.global_cluster_identifier
    source.is_writer = True
    gc.members.append(source)
    return rds_models_action({"GlobalCluster": gc})


def describe_global_clusters(self):
    """DescribeGlobalClusters honouring GlobalClusterIdentifier (moto ignored
    it and listed every global cluster); an unknown one is
    GlobalClusterNotFoundFault, as on AWS."""
    ident = self.params.get("GlobalClusterIdentifier")
    if ident is None:
        gcs = list(self.global_backend.global_clusters.values())
    else:
        gcs = [_global_cluster(ident)]
    for gc in gcs:
        settle(gc)
    return rds_models_action({"GlobalClusters": gcs})


def delete_global_cluster(self):
    """DeleteGlobalCluster from any region: moto looks for the global cluster
    only in the calling region's backend, so a delete asked in the region a
    plan now serves from (drctl reprotect rebuilding a global cluster after
    a detach) found nothing. As on AWS, one that still has members is
    InvalidGlobalClusterStateFault."""
    gc = _global_cluster(self.params["GlobalClusterIdentifier"])
    settle(gc)
    if gc.members:
        raise rds_exc.InvalidGlobalClusterStateFault(gc.global_cluster_arn)
    for account in rds_models.rds_backends.values():
        for backend in account.values():
            if backend.global_clusters.get(gc.global_cluster_identifier) is gc:
                del backend.global_clusters[gc.global_cluster_identifier]
    return rds_models_action({"GlobalCluster": gc})


_delete_db_cluster = RDSResponse.delete_db_cluster


def delete_db_cluster(self):
    """DeleteDBCluster that also deletes the cluster's automated backups, as
    AWS does unless DeleteAutomatedBackups=false. moto kept them, so a
    cluster made again under its name within the same minute (the reference
    world reset, a drill copy made again) failed on its first automated
    snapshot's name (DBClusterSnapshotAlreadyExistsFault)."""
    ident = self.params.get("DBClusterIdentifier")
    result = _delete_db_cluster(self)
    if str(self.params.get("DeleteAutomatedBackups", "true")).lower() != "false":
        snaps = self.backend.cluster_snapshots
        for sid in [
            sid
            for sid, snap in snaps.items()
            if snap.snapshot_type == "automated"
            and snap.cluster.db_cluster_identifier == ident
            and not sid.startswith("rds:unplanned-global-failover-")
        ]:
            del snaps[sid]
    return result


def _save_automated_backup(self):
    """A cluster's first automated snapshot, skipped when one of its name
    exists: moto takes it at creation, named by cluster and minute, so a
    cluster made under the name of one renamed a moment ago (drctl
    reprotect parks an old member and makes a new secondary with its id)
    failed with DBClusterSnapshotAlreadyExistsFault. AWS takes the first
    automated snapshot in the backup window, not at creation."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M")
    if f"rds:{self.db_cluster_identifier}-{stamp}" in self.backend.cluster_snapshots:
        return
    _original_save_automated_backup(self)


_original_save_automated_backup = rds_models.DBCluster.save_automated_backup


_restore_db_cluster_to_point_in_time = rds_models.RDSBackend.restore_db_cluster_to_point_in_time


def restore_db_cluster_to_point_in_time(
    self, db_cluster_identifier, source_db_cluster_identifier, *args, **overrides
):
    """RestoreDBClusterToPointInTime (and its copy-on-write clone) makes a
    standalone cluster, as on AWS. moto copied every attribute of the
    source: a clone of a global database's secondary kept its
    GlobalClusterIdentifier and joined the global cluster as one more
    secondary (production's global cluster changed, and the lag publisher
    measured the copy), and a request without Tags got the source's tags.
    The copy takes the writer's master user (a secondary has none in moto,
    and a standalone cluster needs one). A target that exists is
    DBClusterAlreadyExistsFault, as on AWS (moto replaced the cluster, then
    failed on its automated snapshot's name)."""
    if db_cluster_identifier.lower() in self.clusters:
        raise rds_exc.RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
    source = self.describe_db_clusters(db_cluster_identifier=source_db_cluster_identifier)[0]
    overrides["global_cluster_identifier"] = None
    overrides["replication_source_identifier"] = None
    overrides["tags"] = overrides.get("tags") or []
    if source.global_cluster_identifier and not source.master_username:
        writers = []
        try:
            gc = _global_cluster(source.global_cluster_identifier)
            writers = [m for m in gc.members if m.is_writer]
        except rds_exc.RDSClientError:
            pass
        writer = writers[0] if writers else None
        overrides["master_username"] = getattr(writer, "master_username", None) or "admin"
        overrides["master_user_password"] = (
            getattr(writer, "_master_user_password", None) or "restored-copy-1"
        )
    copy = _restore_db_cluster_to_point_in_time(
        self, db_cluster_identifier, source_db_cluster_identifier, *args, **overrides
    )
    copy.is_writer = False
    return copy


def rds_models_action(result):
    from moto.core.responses import ActionResult

    return ActionResult(result)


def _settling(method):
    """Wraps a read of global clusters so that due moves finish first."""

    def wrapped(self, *a, **kw):
        for account in rds_models.rds_backends.values():
            for backend in account.values():
                for gc in list(backend.global_clusters.values()):
                    settle(gc)
        return method(self, *a, **kw)

    return wrapped


# ---------------------------------------------------------------- ECS services
ECS_SECONDS = float(os.environ.get("DRCTL_MOTO_ECS_SECONDS", "2"))
ECS_LOCK = threading.RLock()  # moto server is threaded; a scale is read and written under it
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
MAX_EVENTS = 100  # DescribeServices shows at most the 100 latest events


class ServiceNotActive(ecs_exc.ECSException):
    """AWS's answer to an UpdateService of a deleted (INACTIVE) service."""

    def __init__(self):
        super().__init__("ServiceNotActiveException", "Service was not ACTIVE.")


def _primary(service):
    """The service's PRIMARY deployment (a dict, as moto keeps it), or None."""
    for d in service.deployments or []:
        if d.get("status") == "PRIMARY":
            return d
    return None


def _cluster_of(service):
    return service._backend.clusters.get(service.cluster_name)


def _event(service, message):
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _utcnow(), "message": message})
    del service.events[MAX_EVENTS:]


def _show_counts(service):
    """The PRIMARY deployment follows the service's counts."""
    d = _primary(service)
    if d is not None:
        d["desiredCount"] = service.desired_count
        d["runningCount"] = service.running_count
        d["pendingCount"] = service.pending_count
        d["updatedAt"] = _utcnow()
    return d


def ecs_settle(service):
    """Finishes a scale whose time has come (called before every read or write)."""
    scale = getattr(service, "_drctl_scale", None)
    if not scale or time.monotonic() < scale["done_at"]:
        return
    service._drctl_scale = None
    if service.status != "ACTIVE":
        return
    cluster = _cluster_of(service)
    if cluster is not None:
        cluster.pending_tasks_count -= service.pending_count
    fail = scale["fail"]
    if fail is not None:
        service.pending_count = 0
        d = _show_counts(service)
        if d is not None:
            d["rolloutState"] = "FAILED"
            d["rolloutStateReason"] = fail["reason"]
            d["failedTasks"] = fail["failedTasks"] or max(abs(scale["to"] - scale["from"]), 1)
            _event(service, f"(service {service.name}) (deployment {d['id']}) deployment failed: "
                            "tasks failed to start.")
        return
    if cluster is not None:
        cluster.running_tasks_count += scale["to"] - service.running_count
    service.running_count = scale["to"]
    service.pending_count = 0
    d = _show_counts(service)
    if d is not None and d.get("rolloutState") == "FAILED":
        d["rolloutState"] = "COMPLETED"
        d["rolloutStateReason"] = f"ECS deployment {d['id']} completed."
        d["failedTasks"] = 0
    _event(service, f"(service {service.name}) has reached a steady state.")


def _settle_backend(backend):
    with ECS_LOCK:
        for service in list(backend.services.values()):
            ecs_settle(service)


_ecs_create_service = ecs_models.EC2ContainerServiceBackend.create_service
_ecs_update_service = ecs_models.EC2ContainerServiceBackend.update_service


def ecs_create_service(self, *args, **kwargs):
    """CreateService, its service steady at once (see the module's docstring)."""
    with ECS_LOCK:
        service = _ecs_create_service(self, *args, **kwargs)
        service._drctl_scale = None
        service._drctl_fail = None
        cluster = _cluster_of(service)
        if cluster is not None:
            cluster.pending_tasks_count -= service.pending_count
            cluster.running_tasks_count += service.desired_count - service.running_count
        service.running_count = service.desired_count
        service.pending_count = 0
        d = _show_counts(service)
        if d is not None:
            d["rolloutState"] = "COMPLETED"
            d["rolloutStateReason"] = f"ECS deployment {d['id']} completed."
        return service


def ecs_update_service(self, service_properties):
    """UpdateService whose desiredCount takes DRCTL_MOTO_ECS_SECONDS to run."""
    with ECS_LOCK:
        cluster_str = service_properties.get("cluster") or "default"
        name = str(service_properties.get("service") or "").split("/")[-1]
        # ClusterNotFoundException, ServiceNotFoundException: moto's, as AWS's.
        service = self._get_service(cluster_str, name)
        if service.status != "ACTIVE":
            raise ServiceNotActive()
        ecs_settle(service)
        cluster = _cluster_of(service)
        before = (service.desired_count, service.running_count, service.pending_count)
        counts = (cluster.running_tasks_count, cluster.pending_tasks_count) if cluster else None
        new = service_properties.get("desired_count")
        updated = _ecs_update_service(self, service_properties)
        # moto made runningCount the new count at once: put back what runs.
        service.running_count, service.pending_count = before[1], before[2]
        if new is not None and int(new) != before[0]:
            new = int(new)
            service.desired_count = new
            fail = getattr(service, "_drctl_fail", None)
            service._drctl_fail = None
            service.pending_count = max(new - service.running_count, 0)
            service._drctl_scale = {
                "from": service.running_count,
                "to": new,
                "fail": fail,
                "done_at": time.monotonic() + ECS_SECONDS,
            }
        if cluster is not None:
            cluster.running_tasks_count = counts[0] - before[1] + service.running_count
            cluster.pending_tasks_count = counts[1] - before[2] + service.pending_count
        _show_counts(service)
        ecs_settle(service)  # at once when the seconds are 0
        return updated


_ecs_delete_service = ecs_models.EC2ContainerServiceBackend.delete_service


def ecs_delete_service(self, *args, **kwargs):
    """DeleteService: a scale under way and an armed failure go with the service."""
    with ECS_LOCK:
        _settle_backend(self)
        service = _ecs_delete_service(self, *args, **kwargs)
        service._drctl_scale = None
        service._drctl_fail = None
        return service


def _settling_ecs(method):
    """Wraps an ECS read so that due scales finish first."""

    def wrapped(self, *a, **kw):
        _settle_backend(self)
        return method(self, *a, **kw)

    return wrapped


# ------------------------------------------------ pending maintenance (RDS)
# moto 5.2 does not answer DescribePendingMaintenanceActions. AWS answers,
# per resource (an instance or a cluster, by ARN), the maintenance it will
# apply (Amazon RDS API Reference: DescribePendingMaintenanceActions and the
# PendingMaintenanceAction data type: Action such as `system-update`,
# `db-upgrade`, `hardware-maintenance`, `ca-certificate-rotation`;
# AutoAppliedAfterDate, ForcedApplyDate, CurrentApplyDate, OptInStatus,
# Description), filtered by ResourceIdentifier (an ARN) and by the filters
# `db-instance-id` and `db-cluster-id` (identifiers or ARNs). Here the
# actions are what a test arms through /_drctl/rds/pending-maintenance.
# (region, "db" | "cluster", identifier) -> [PendingMaintenanceAction]
PENDING_MAINTENANCE = {}
PENDING_LOCK = threading.Lock()
MAINTENANCE_FILTERS = {"db-instance-id": "db", "db-cluster-id": "cluster"}
MAINTENANCE_DATES = ("AutoAppliedAfterDate", "ForcedApplyDate", "CurrentApplyDate")


def describe_pending_maintenance_actions(self):
    p = self.params
    want = p.get("ResourceIdentifier")
    filters = {f["Name"]: f["Values"] for f in p.get("Filters", [])}
    for name in filters:
        if name not in MAINTENANCE_FILTERS:
            raise rds_exc.InvalidParameterValue(f"Unrecognized filter name: {name}")
    out = []
    with PENDING_LOCK:
        for (region, kind, ident), actions in sorted(PENDING_MAINTENANCE.items()):
            if region != self.region or not actions:
                continue
            arn = f"arn:aws:rds:{region}:{self.current_account}:{kind}:{ident}"
            if want and want != arn:
                continue
            # Every filter given must name the resource (one of its values).
            if any(MAINTENANCE_FILTERS[n] != kind or not (set(v) & {ident, arn})
                   for n, v in filters.items()):
                continue
            out.append({"ResourceIdentifier": arn,
                        "PendingMaintenanceActionDetails": [dict(a) for a in actions]})
    return rds_models_action({"PendingMaintenanceActions": out})


def maintenance_route(method, path, body):
    """/_drctl/rds/pending-maintenance: POST arms a resource's actions (its
    `actions` replace what it had; [] clears them), GET lists them."""
    if path != "/_drctl/rds/pending-maintenance":
        raise RouteError(404, f"no route {path}")
    if method == "GET":
        with PENDING_LOCK:
            return 200, {"armed": [{"region": r, "kind": k, "id": i, "actions": len(a)}
                                   for (r, k, i), a in sorted(PENDING_MAINTENANCE.items()) if a]}
    if method != "POST":
        raise RouteError(405, f"{method} is not allowed on {path}")
    region, ident = _need_str(body, "region"), _need_str(body, "id")
    kind = body.get("kind", "db")
    if kind not in ("db", "cluster"):
        raise RouteError(400, "'kind' must be 'db' (an instance) or 'cluster'")
    actions = body.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, dict) and a.get("Action") for a in actions):
        raise RouteError(400, "'actions' must be a list of objects, each with an 'Action'")
    parsed = []
    for a in actions:
        a = dict(a)
        for key in MAINTENANCE_DATES:
            if key in a:
                try:
                    a[key] = datetime.datetime.fromisoformat(a[key].replace("Z", "+00:00"))
                except (AttributeError, ValueError):
                    raise RouteError(400, f"'{key}' must be an ISO 8601 time") from None
        parsed.append(a)
    with PENDING_LOCK:
        PENDING_MAINTENANCE[(region, kind, ident)] = parsed
    return 200, {"armed": {"region": region, "kind": kind, "id": ident, "actions": len(parsed)}}


# ------------------------------------------------ ELBv2 target health
# Target group ARN -> the reason its registered targets fail their checks.
FAILING_TARGETS = {}
FAILING_LOCK = threading.Lock()
HEALTH_DESCRIPTIONS = {
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.Timeout": "Request timed out",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [502]",
}


def _health_for(original):
    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        with FAILING_LOCK:
            reason = FAILING_TARGETS.get(self.arn)
        if reason and status.status == "healthy":
            status.status = "unhealthy"
            status.reason = reason
            status.description = HEALTH_DESCRIPTIONS.get(reason, "Health checks failed")
        return status
    return health_for


def elbv2_route(method, path, body):
    """/_drctl/elbv2/health: POST makes a target group's targets fail their
    checks (`reason`) or pass again (no reason), GET lists those failing."""
    if path != "/_drctl/elbv2/health":
        raise RouteError(404, f"no route {path}")
    if method == "POST":
        arn = _need_str(body, "arn")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise RouteError(400, "'reason' must be a string or null")
        with FAILING_LOCK:
            if reason:
                FAILING_TARGETS[arn] = reason
            else:
                FAILING_TARGETS.pop(arn, None)
    elif method != "GET":
        raise RouteError(405, f"{method} is not allowed on {path}")
    with FAILING_LOCK:
        return 200, {"failing": [{"arn": a, "reason": r} for a, r in sorted(FAILING_TARGETS.items())]}


# ------------------------------------------------ HTTP routes for tests (/_drctl/)
class RouteError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _find_services(region=None, cluster=None, service=None):
    """moto's services matching what is given (names or ARNs), in every account."""
    cluster = cluster.split("/")[-1] if cluster else None
    service = service.split("/")[-1] if service else None
    found = []
    for account in list(ecs_models.ecs_backends.values()):
        for reg, backend in list(dict.items(account)):
            if region and reg != region:
                continue
            for svc in list(backend.services.values()):
                if (cluster is None or svc.cluster_name == cluster) and (
                    service is None or svc.name == service
                ) and svc.status == "ACTIVE":
                    found.append(svc)
    return found


def _describe_armed(svc):
    fail = svc._drctl_fail
    return {
        "region": svc.region_name,
        "cluster": svc.cluster_name,
        "service": svc.name,
        "serviceArn": svc.arn,
        "reason": fail["reason"],
        "failedTasks": fail["failedTasks"],
    }


def _need_str(body, key):
    v = body.get(key)
    if not isinstance(v, str) or not v:
        raise RouteError(400, f"'{key}' must be a non-empty string")
    return v


def ecs_route(method, path, body):
    """Answers a /_drctl/ecs/... request: (status, JSON-able body)."""
    global ECS_SECONDS
    with ECS_LOCK:
        if path == "/_drctl/ecs/fail" and method == "POST":
            region, cluster, service = (_need_str(body, k) for k in ("region", "cluster", "service"))
            failed = body.get("failedTasks")
            if failed is not None and (not isinstance(failed, int) or isinstance(failed, bool) or failed < 1):
                raise RouteError(400, "'failedTasks' must be a whole number >= 1 (left out: the tasks the scale starts)")
            reason = body.get("reason", CIRCUIT_BREAKER_REASON)
            if not isinstance(reason, str) or not reason:
                raise RouteError(400, "'reason' must be a non-empty string")
            found = _find_services(region, cluster, service)
            if not found:
                raise RouteError(404, f"no ACTIVE service {service} in cluster {cluster} in {region}")
            for svc in found:
                svc._drctl_fail = {"reason": reason, "failedTasks": failed}
            return 200, {"armed": _describe_armed(found[0])}
        if path == "/_drctl/ecs/fail" and method == "GET":
            return 200, {"armed": [_describe_armed(s) for s in _find_services()
                                   if getattr(s, "_drctl_fail", None)]}
        if (path == "/_drctl/ecs/clear" and method == "POST") or (
            path == "/_drctl/ecs/fail" and method == "DELETE"
        ):
            for key in ("region", "cluster", "service"):
                if key in body:
                    _need_str(body, key)
            cleared = []
            for svc in _find_services(body.get("region"), body.get("cluster"), body.get("service")):
                if getattr(svc, "_drctl_fail", None):
                    cleared.append(_describe_armed(svc))
                    svc._drctl_fail = None
            return 200, {"cleared": cleared}
        if path == "/_drctl/ecs/config" and method == "GET":
            return 200, {"seconds": ECS_SECONDS}
        if path == "/_drctl/ecs/config" and method == "POST":
            seconds = body.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise RouteError(400, "'seconds' must be a number >= 0")
            ECS_SECONDS = float(seconds)
            return 200, {"seconds": ECS_SECONDS}
        if path in ("/_drctl/ecs/fail", "/_drctl/ecs/clear", "/_drctl/ecs/config"):
            raise RouteError(405, f"{method} is not allowed on {path}")
        raise RouteError(404, f"no route {path}")


def drctl_wsgi(environ, start_response):
    """The /_drctl/ routes, as a WSGI application answering JSON."""
    status = 200
    try:
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        raw = environ["wsgi.input"].read(size) if size > 0 else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise RouteError(400, f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise RouteError(400, "the body must be a JSON object")
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        route = (moto_backups.route if path.startswith("/_drctl/rds/backups/")
                 else maintenance_route if path.startswith("/_drctl/rds/")
                 else elbv2_route if path.startswith("/_drctl/elbv2/") else ecs_route)
        status, answer = route(method, path, body)
    except RouteError as e:
        status, answer = e.status, {"error": str(e)}
    except Exception as e:  # noqa: BLE001 - answered, never a moto HTML page
        status, answer = 500, {"error": f"{type(e).__name__}: {e}"}
    data = json.dumps(answer).encode()
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
        status, "Internal Server Error")
    start_response(f"{status} {phrase}", [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(data)))])
    return [data]


# moto's backends are dicts and lists that its handlers iterate and change
# without a lock, while moto server answers each request on a thread of its
# own: a DescribeDBInstances walking the instances while another request
# made or deleted one answered 500 ("OrderedDict mutated during iteration",
# seen in CI), and two deletes of one replica at once failed in
# remove_replica. Every request is answered under this lock, one at a time.
# No handler here waits on another request or on anything outside moto, and
# the GIL ran them one at a time already, so the world loses little speed.
MOTO_LOCK = threading.RLock()


def _with_routes(app_class):
    """moto server's WSGI application class, answering /_drctl/ itself and
    every request one at a time (MOTO_LOCK)."""

    class WithDrctlRoutes(app_class):
        def __call__(self, environ, start_response):
            with MOTO_LOCK:
                if environ.get("PATH_INFO", "").startswith("/_drctl/"):
                    return drctl_wsgi(environ, start_response)
                return super().__call__(environ, start_response)

    return WithDrctlRoutes


# EKS managed node groups' tags. moto 5.2's TagResource, UntagResource and
# ListTagsForResource find clusters only ("It does not tag a managed node
# group"); EKS tags node groups by their ARN the same way (Amazon EKS API
# Reference: TagResource, "resourceArn: the Amazon Resource Name (ARN) of
# the resource to add tags to", which names clusters and managed node
# groups), and DescribeNodegroup answers the node group's tags. A drill
# marks the standby node group it raises with them. moto's UntagResource
# also read one `tagKeys` value of the query string; EKS takes each.

_eks_tag_resource = eks_models.EKSBackend.tag_resource
_eks_untag_resource = eks_models.EKSBackend.untag_resource
_eks_list_tags = eks_models.EKSBackend.list_tags_for_resource


def _nodegroup_by_arn(backend, arn):
    for cluster in backend.clusters.values():
        for group in cluster.nodegroups.values():
            if group.arn == arn:
                return group
    return None


def eks_tag_resource(self, resource_arn, tags):
    group = _nodegroup_by_arn(self, resource_arn)
    if group is None:
        return _eks_tag_resource(self, resource_arn, tags)
    if group.tags is None:
        group.tags = {}
    group.tags.update(tags or {})


def eks_untag_resource(self, resource_arn, tag_keys):
    group = _nodegroup_by_arn(self, resource_arn)
    if group is None:
        return _eks_untag_resource(self, resource_arn, tag_keys)
    if not isinstance(tag_keys, list):
        tag_keys = [tag_keys]
    for key in tag_keys:
        (group.tags or {}).pop(key, None)


def eks_list_tags_for_resource(self, resource_arn):
    group = _nodegroup_by_arn(self, resource_arn)
    if group is None:
        return _eks_list_tags(self, resource_arn)
    return dict(group.tags or {})


def eks_untag_resource_response(self):
    keys = self.querystring.get("tagKeys") or []
    self.eks_backend.untag_resource(self._extract_arn_from_path(), list(keys))
    return EmptyResult()


# ------------------------------------------------ speed (answers unchanged)
# Two of moto 5.2's per-request costs that grow with nothing a test does,
# measured with py-spy on the world's moto for a minute of the integration
# tests (46 % of its samples, moto being one process and the suite bound by
# the machine's two cores; docs/performance.md):
# - EKS's CreateCluster and CreateNodegroup check the role ARN's partition
#   against `boto3.Session().get_available_partitions()`, a new session per
#   call that parses botocore's endpoint files again (36 %);
# - the server's dispatcher lists moto's package directory on every request
#   to learn its service modules (`backends.list_of_moto_modules`, 10 %).
# Both read files that do not change while the server runs: read once here.
# The check itself is moto's (same pattern, same partitions, same error).

from moto import backends as _moto_backends
from moto.eks import utils as _eks_utils

_MOTO_MODULES = tuple(_moto_backends.list_of_moto_modules())
_PARTITIONS = None


def _list_of_moto_modules():
    return iter(_MOTO_MODULES)


class _Partitions:
    """`boto3.Session`'s stand-in inside moto.eks.utils: its partitions, read once."""

    def get_available_partitions(self):
        global _PARTITIONS
        if _PARTITIONS is None:
            import boto3

            _PARTITIONS = tuple(boto3.Session().get_available_partitions())
        return list(_PARTITIONS)


def _speed_up():
    _moto_backends.list_of_moto_modules = _list_of_moto_modules
    _eks_utils.Session = _Partitions


_modify_db_cluster = rds_models.RDSBackend.modify_db_cluster


def modify_db_cluster(self, kwargs):
    """A cluster renamed (ModifyDBCluster with NewDBClusterIdentifier)
    keeps its instances, as on AWS ("the DB instances in the cluster are
    not renamed", and stay its members). moto finds a cluster's members by
    the cluster's name, so the renamed cluster lost its writer, and a
    cluster made later under the old name (a restore into the name drctl
    reprotect freed) listed that writer as its own."""
    old = kwargs["db_cluster_identifier"]
    new = kwargs.get("new_db_cluster_identifier")
    result = _modify_db_cluster(self, kwargs)
    if new and new.lower() != old.lower():
        for inst in self.databases.values():
            if (isinstance(inst, rds_models.DBInstanceClustered)
                    and (inst.db_cluster_identifier or "").lower() == old.lower()):
                inst.db_cluster_identifier = new
    return result


def install():
    """Adds the operations to moto's RDS and the scaling model to its ECS (idempotent)."""
    if getattr(RDSResponse, "_drctl_ext", False):
        return
    rds_models.GlobalCluster.failover_state = None
    RDSResponse.switchover_global_cluster = switchover_global_cluster
    RDSResponse.failover_global_cluster = failover_global_cluster
    RDSResponse.remove_from_global_cluster = remove_from_global_cluster
    RDSResponse.create_global_cluster = create_global_cluster
    RDSResponse.describe_global_clusters = describe_global_clusters
    RDSResponse.delete_db_cluster = delete_db_cluster
    RDSResponse.delete_global_cluster = delete_global_cluster
    RDSResponse.describe_pending_maintenance_actions = describe_pending_maintenance_actions
    rds_models.DBCluster.save_automated_backup = _save_automated_backup
    rds_models.RDSBackend.restore_db_cluster_to_point_in_time = restore_db_cluster_to_point_in_time
    rds_models.RDSBackend.modify_db_cluster = modify_db_cluster
    for name in (
        "describe_db_clusters",
        "create_db_cluster",
    ):
        setattr(RDSResponse, name, _settling(getattr(RDSResponse, name)))
    RDSResponse._drctl_ext = True
    _speed_up()
    moto_backups.install()
    backend = ecs_models.EC2ContainerServiceBackend
    backend.create_service = ecs_create_service
    backend.update_service = ecs_update_service
    backend.delete_service = ecs_delete_service
    for name in ("describe_services", "list_services", "describe_clusters"):
        setattr(backend, name, _settling_ecs(getattr(backend, name)))
    elbv2_models.FakeTargetGroup.health_for = _health_for(elbv2_models.FakeTargetGroup.health_for)
    eks_models.EKSBackend.tag_resource = eks_tag_resource
    eks_models.EKSBackend.untag_resource = eks_untag_resource
    eks_models.EKSBackend.list_tags_for_resource = eks_list_tags_for_resource
    EKSResponse.untag_resource = eks_untag_resource_response


if __name__ == "__main__":
    install()
    import moto.server

    # moto.server.main builds its WSGI application from this name: the
    # /_drctl/ routes are answered before moto sees the request.
    moto.server.DomainDispatcherApplication = _with_routes(moto.server.DomainDispatcherApplication)
    sys.exit(moto.server.main(sys.argv[1:]))
