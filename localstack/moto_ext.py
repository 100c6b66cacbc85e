"""moto server with the two Aurora Global Database operations moto lacks.

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

Run as moto_server is:  python moto_ext.py -H 127.0.0.1 -p 5000
Tested by test_moto_ext.py with boto3 (not drctl's client).
"""
import datetime
import os
import sys
import time

from moto.rds import exceptions as rds_exc
from moto.rds import models as rds_models
from moto.rds.responses import RDSResponse

MARKER = "drctl moto extension: SwitchoverGlobalCluster, FailoverGlobalCluster"
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


def install():
    """Adds the operations to moto's RDS (idempotent)."""
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
    rds_models.DBCluster.save_automated_backup = _save_automated_backup
    rds_models.RDSBackend.restore_db_cluster_to_point_in_time = restore_db_cluster_to_point_in_time
    for name in (
        "describe_db_clusters",
        "create_db_cluster",
    ):
        setattr(RDSResponse, name, _settling(getattr(RDSResponse, name)))
    RDSResponse._drctl_ext = True


if __name__ == "__main__":
    install()
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
