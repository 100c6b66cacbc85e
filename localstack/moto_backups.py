"""Cross-Region backups for the world's moto: what RDS's "backup and restore"
disaster-recovery strategy calls in the Region it recovers into.

Installed by moto_ext.install() (moto_ext.py is how `up` runs moto server);
tested by test_moto_backups.py with boto3. README.md, "Cross-Region backups",
says what it models and where each fact comes from.

What moto 5.2 does, read before writing this (its rds/models.py and
responses.py, and tried with boto3):

- StartDBInstanceAutomatedBackupsReplication and
  StopDBInstanceAutomatedBackupsReplication: not implemented
  (NotImplementedError: a 500).
- DescribeDBInstanceAutomatedBackups: one entry per instance of the calling
  Region that has automated snapshots there, with DBInstanceIdentifier and
  Status (active/retained) only: no ARN, Region or RestoreWindow, and nothing
  replicated from another Region.
- RestoreDBInstanceToPointInTime ignores SourceDBInstanceAutomatedBackupsArn;
  with no SourceDBInstanceIdentifier it restored the first instance of the
  Region it found (a silent wrong copy). It ignores RestoreTime.
- CopyDBSnapshot / CopyDBClusterSnapshot already find a source given by the
  ARN of another Region (same account), but the copy is `available` at once,
  without SourceRegion, SourceDBSnapshotIdentifier or PercentProgress (DB
  snapshot), or SourceDBClusterSnapshotArn (cluster snapshot); a cluster
  snapshot's copy takes the copy's time as its SnapshotCreateTime. The copy
  keeps the source instance's or cluster's Region-bound settings, so an
  instance restored from it in us-east-1 sat in `us-west-2a`, and a cluster
  restored from a global member's copy would join that global cluster.
- RestoreDBInstanceFromDBSnapshot / RestoreDBClusterFromSnapshot from such
  a copy work (moto's own code, kept) once the copy's settings are the
  destination Region's; they did not check the snapshot's status.

What this adds, on moto's own state and with the answer shapes of the
botocore model moto serializes with (shape names for errors: the serializer
sends their AWS codes and HTTP statuses):

- replicated automated backups in the destination Region: `pending`, then
  `replicating` once DRCTL_MOTO_BACKUP_SECONDS have passed, `retained` once
  replication is stopped or the source instance deleted, each with its
  RestoreWindow;
- RestoreDBInstanceToPointInTime from one (SourceDBInstanceAutomatedBackupsArn),
  the time checked against the window; the new instance is `creating`, then
  `available` after the same seconds;
- cross-Region snapshot copies that are `pending` (DB snapshot) or `copying`
  (cluster snapshot) with a PercentProgress that climbs, then `available`
  after the same seconds; the restores refuse a copy that is not available.

Time passes lazily: every RDS request first finishes what is due (no
thread). moto_ext.py answers one request at a time (its MOTO_LOCK), so this
module takes no lock of its own.
"""
import copy as _copy
import datetime
import os
import random
import time

from botocore import xform_name
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds import exceptions as rds_exc
from moto.rds import models as rds_models
from moto.rds.responses import RDSResponse

# Seconds a replication stays `pending`, a snapshot copy `pending`/`copying`
# and a restored instance `creating`. Small by default so that tests do not
# wait long (AWS takes minutes to hours); POST /_drctl/rds/backups/config
# changes it for what starts from then on.
BACKUP_SECONDS = float(os.environ.get("DRCTL_MOTO_BACKUP_SECONDS", "2"))


def _error(shape, message):
    """An RDS error by its botocore shape name (the serializer sends the
    shape's code and HTTP status, e.g. DBInstanceAutomatedBackupNotFoundFault
    -> DBInstanceAutomatedBackupNotFound, 404)."""
    return rds_exc.RDSClientError(shape, message)


def _now():
    """Now, in UTC and aware (moto's utcnow is naive; RestoreTime is compared with it)."""
    return utcnow().replace(tzinfo=datetime.timezone.utc)


# ------------------------------------------------ things that take time
# (monotonic deadline, start, object, what to do when due). Kept in the
# module, not in a backend: what a moto reset drops simply settles unseen.
_UNDER_WAY = []


def _take_time(obj, on_done):
    """`on_done(obj)` once BACKUP_SECONDS (as they are now) have passed."""
    start = time.monotonic()
    _UNDER_WAY.append((start + BACKUP_SECONDS, start, obj, on_done))


def settle():
    """Finishes what is due and moves the PercentProgress of copies under
    way (called before every RDS request is answered)."""
    now = time.monotonic()
    still = []
    for entry in _UNDER_WAY:
        done_at, start, obj, on_done = entry
        if now >= done_at:
            on_done(obj)
        else:
            if hasattr(obj, "percent_progress"):
                span = max(done_at - start, 1e-9)
                # Never 100 before it is available (AWS shows 100 once done).
                obj.percent_progress = min(99, int(100 * (now - start) / span))
            still.append(entry)
    _UNDER_WAY[:] = still


_base_call_action = RDSResponse.call_action  # BaseResponse's: RDS has none of its own


def _call_action(self):
    """Every RDS request: what is due first, then moto's dispatch."""
    settle()
    return _base_call_action(self)


# ------------------------------------------------ ARNs
def _parse_arn(arn):
    """(partition, region, account, resource type, resource id) of an RDS ARN,
    or None. The id may hold colons (automated snapshots: rds:<db>-<time>)."""
    parts = (arn or "").split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "rds":
        return None
    return parts[1], parts[3], parts[4], parts[5], parts[6]


def _backend(account, region):
    return rds_models.rds_backends[account][region]


# ------------------------------------------------ replicated automated backups
# The form of AWS's examples (CLI reference, start-db-instance-automated-
# backups-replication: arn:aws:rds:us-west-2:123456789012:auto-backup:
# ab-jkib2gfq5rv7replzadausbrktni2bn4example): "ab-" and 38 lowercase
# base32 characters.
_AB_CHARS = "abcdefghijklmnopqrstuvwxyz234567"


class Replication:
    """The automated backups of one source instance replicated into the
    Region whose backend holds this object (its `backend`)."""

    def __init__(self, backend, source, retention, kms_key_id):
        self.backend = backend
        self.source_arn = source.db_instance_arn
        self.source_region = source.region
        self.source_account = source.account_id
        self.source_id = source.db_instance_identifier
        ident = "ab-" + "".join(random.choice(_AB_CHARS) for _ in range(38))
        self.arn = f"arn:{backend.partition}:rds:{backend.region_name}:{backend.account_id}:auto-backup:{ident}"
        self.retention = retention
        self.kms_key_id = kms_key_id
        self.encrypted = bool(source.storage_encrypted)
        self.started = _now()  # the first replicated snapshot's time: the window's start
        self.ready_at = time.monotonic() + BACKUP_SECONDS  # its copy is in this Region then
        self.ended = None  # when it stopped replicating (stopped, or the source deleted)
        self.ended_mono = None
        self._template = _copy.copy(source)

    def ready(self):
        """Whether the first snapshot arrived (before replication ended, if it did)."""
        return (self.ended_mono if self.ended_mono is not None else time.monotonic()) >= self.ready_at

    @property
    def status(self):
        if self.ended is not None:
            return "retained"
        return "replicating" if self.ready() else "pending"

    def source(self):
        """The live source instance, or None once it is gone."""
        try:
            db = _backend(self.source_account, self.source_region).databases.get(self.source_id)
        except KeyError:
            return None
        if db is not None and db.db_instance_arn == self.source_arn:
            return db
        return None

    def template(self):
        """The source's properties: the live instance's while it exists,
        else the last seen (AWS keeps them with the backups)."""
        live = self.source()
        if live is not None:
            self._template = _copy.copy(live)
        return self._template

    def window(self):
        """(EarliestTime, LatestTime), or None while nothing is restorable
        (pending). Transaction logs arrive without lag here: LatestTime is
        now while replicating, the end once retained; EarliestTime is the
        replication's start, or the retention period back from now."""
        if not self.ready():
            return None
        latest = self.ended or _now()
        earliest = max(self.started, _now() - datetime.timedelta(days=self.retention))
        return earliest, max(earliest, latest)

    def end(self):
        if self.ended is None:
            self.ended, self.ended_mono = _now(), time.monotonic()

    def describe(self):
        """The DBInstanceAutomatedBackup shape (botocore's members)."""
        t = self.template()
        window = self.window()
        out = {
            "DBInstanceArn": self.source_arn,
            "DbiResourceId": t.dbi_resource_id,
            "Region": self.source_region,
            "DBInstanceIdentifier": self.source_id,
            # Empty while pending (the CLI reference's example shows {}).
            "RestoreWindow": {} if window is None else {"EarliestTime": window[0], "LatestTime": window[1]},
            "AllocatedStorage": t.allocated_storage,
            "Status": self.status,
            "Port": t.port,
            "InstanceCreateTime": t.instance_create_time,
            "MasterUsername": t.master_username,
            "Engine": t.engine,
            "EngineVersion": t.engine_version,
            "LicenseModel": t.license_model,
            "Iops": t.iops,
            "StorageThroughput": t.storage_throughput,
            "OptionGroupName": t.option_group_name,
            "Encrypted": self.encrypted,
            "StorageType": t.storage_type,
            "KmsKeyId": self.kms_key_id,
            "IAMDatabaseAuthenticationEnabled": bool(t.enable_iam_database_authentication),
            "BackupRetentionPeriod": self.retention,
            "DBInstanceAutomatedBackupsArn": self.arn,
        }
        return {k: v for k, v in out.items() if v is not None}


def _replications(backend):
    """The replications into `backend`'s Region, by ARN (kept on the backend:
    moto's reset clears it with the rest)."""
    reps = getattr(backend, "_drctl_replications", None)
    if reps is None:
        reps = backend._drctl_replications = {}
    return reps


def _all_replications():
    for account in list(rds_models.rds_backends.values()):
        for backend in list(dict.values(account)):
            yield from list(getattr(backend, "_drctl_replications", {}).values())


def _replications_of(source_arn):
    """Replications of a source instance that are still replicating."""
    return [r for r in _all_replications() if r.source_arn == source_arn and r.ended is None]


def _replication_list(source_arn):
    """DBInstanceAutomatedBackupsReplications, as the source Region shows it."""
    return [{"DBInstanceAutomatedBackupsArn": r.arn} for r in _replications_of(source_arn)]


def _find_source(arn, caller_region):
    parsed = _parse_arn(arn)
    if parsed is None or parsed[3] != "db" or not parsed[4]:
        raise rds_exc.InvalidParameterValue(
            f"The parameter SourceDBInstanceArn is not a valid DB instance ARN: {arn}."
        )
    _, region, account, _, ident = parsed
    if region == caller_region:
        raise rds_exc.InvalidParameterValue(
            "Automated backups can only be replicated to a Region other than the source "
            f"DB instance's ({region}): call this in the destination Region."
        )
    try:
        backend = _backend(account, region)
    except KeyError:
        backend = None
    db = backend.databases.get(ident.lower()) if backend is not None else None
    if db is None:
        raise _error("DBInstanceNotFoundFault", f"DBInstance {arn} not found.")
    return db


def start_db_instance_automated_backups_replication(self):
    p = self.params
    source = _find_source(p.get("SourceDBInstanceArn"), self.region)
    if not source.backup_retention_period:
        raise _error(
            "InvalidDBInstanceStateFault",
            f"Automated backups are not enabled for DB instance {source.db_instance_identifier} "
            "(its BackupRetentionPeriod is 0).",
        )
    for rep in _replications(self.backend).values():
        if rep.source_arn == source.db_instance_arn and rep.ended is None:
            raise _error(
                "InvalidDBInstanceAutomatedBackupStateFault",
                f"Automated backups of {source.db_instance_arn} are already replicated to "
                f"{self.region} ({rep.arn}).",
            )
    retention = p.get("BackupRetentionPeriod")
    if retention is None:
        retention = source.backup_retention_period
    retention = int(retention)
    if not 1 <= retention <= 35:
        raise rds_exc.InvalidParameterValue(
            f"Invalid backup retention period: {retention}. It must be from 1 to 35 days."
        )
    kms = p.get("KmsKeyId")
    if kms:
        # moto's own check: the key must exist in this (the destination)
        # Region; a key ARN of another Region is KMSKeyNotAccessibleFault.
        kms = self.backend._validate_kms_key(kms)
    elif source.storage_encrypted:
        raise rds_exc.KMSKeyNotAccessibleFault(str(kms))
    # PreSignedUrl (GovCloud only, ignored elsewhere per the API reference) and
    # Tags are accepted and not kept.
    rep = Replication(self.backend, source, retention, kms)
    _replications(self.backend)[rep.arn] = rep
    return ActionResult({"DBInstanceAutomatedBackup": rep.describe()})


def stop_db_instance_automated_backups_replication(self):
    arn = self.params.get("SourceDBInstanceArn")
    for rep in _replications(self.backend).values():
        if rep.source_arn == arn and rep.ended is None:
            # The answer shows the backups as they were when asked (the CLI
            # reference's example answers `replicating`); from now on they
            # are `retained` (DescribeDBInstanceAutomatedBackups' filters).
            answer = rep.describe()
            rep.end()
            return ActionResult({"DBInstanceAutomatedBackup": answer})
    _find_source(arn, self.region)  # DBInstanceNotFoundFault for an unknown source
    raise _error(
        "InvalidDBInstanceStateFault",
        f"Automated backups of {arn} are not being replicated to {self.region}.",
    )


_delete_db_instance = rds_models.RDSBackend.delete_db_instance


def delete_db_instance(self, *args, **kwargs):
    """DeleteDBInstance: the backups replicated from the instance become
    `retained`, restorable up to the moment of its deletion."""
    db = _delete_db_instance(self, *args, **kwargs)
    for rep in _replications_of(db.db_instance_arn):
        rep.end()
    return db


# DescribeDBInstanceAutomatedBackups: moto's entries of the calling Region,
# then the backups replicated into it, filtered alike.
_FILTERS = ("status", "db-instance-id", "dbi-resource-id")


def _keys(entry):
    """(identifier, instance ARN, dbi resource id, status, backups ARN) of a
    moto entry or of a replicated one's description."""
    if isinstance(entry, dict):
        return (entry["DBInstanceIdentifier"], entry["DBInstanceArn"], entry.get("DbiResourceId"),
                entry["Status"], entry["DBInstanceAutomatedBackupsArn"])
    b = entry.backend
    arn = f"arn:{b.partition}:rds:{b.region_name}:{b.account_id}:db:{entry.db_instance_identifier}"
    db = b.databases.get(entry.db_instance_identifier)
    return entry.db_instance_identifier, arn, getattr(db, "dbi_resource_id", None), entry.status, None


def describe_db_instance_automated_backups(self):
    p = self.params
    filters = {f["Name"]: f["Values"] for f in p.get("Filters", [])}
    for name in filters:
        if name not in _FILTERS:
            raise rds_exc.InvalidParameterValue(f"Unrecognized filter name: {name}")
    wanted_arn = p.get("DBInstanceAutomatedBackupsArn")
    ident = (p.get("DBInstanceIdentifier") or "").lower() or None
    dbi = p.get("DbiResourceId")
    entries = [] if wanted_arn else list(self.backend.describe_db_instance_automated_backups(
        db_instance_identifier=ident))
    entries += [r.describe() for r in _replications(self.backend).values()
                if wanted_arn in (None, r.arn) and ident in (None, r.source_id)]
    out = []
    for e in entries:
        e_id, e_arn, e_dbi, e_status, _ = _keys(e)
        if dbi and (e_dbi or "").lower() != dbi.lower():
            continue
        if "status" in filters and e_status not in filters["status"]:
            continue
        if "db-instance-id" in filters and not {e_id, e_arn} & set(filters["db-instance-id"]):
            continue
        if "dbi-resource-id" in filters and e_dbi not in filters["dbi-resource-id"]:
            continue
        out.append(e)
    if wanted_arn and not out:
        raise _error("DBInstanceAutomatedBackupNotFoundFault",
                     f"Automated backup {wanted_arn} not found.")
    return ActionResult({"DBInstanceAutomatedBackups": out})


# The source Region's views: DescribeDBInstances' DBInstanceAutomatedBackupsReplications
# and the same list on moto's own automated-backup entry.
def _instance_replications(self):
    return _replication_list(self.db_instance_arn)


def _local_backup_replications(self):
    return _replication_list(_keys(self)[1])


# ------------------------------------------------ restore to a point in time
_restore_to_point_in_time = RDSResponse.restore_db_instance_to_point_in_time

# Request parameters of RestoreDBInstanceToPointInTime that become the new
# instance's settings (moto's create_db_instance takes snake_case names).
_OVERRIDES = (
    "DBInstanceClass", "Port", "AvailabilityZone", "DBSubnetGroupName", "MultiAZ",
    "PubliclyAccessible", "AutoMinorVersionUpgrade", "LicenseModel", "DBName", "Iops",
    "StorageThroughput", "OptionGroupName", "CopyTagsToSnapshot", "StorageType",
    "VpcSecurityGroupIds", "EnableIAMDatabaseAuthentication", "EnableCloudwatchLogsExports",
    "DBParameterGroupName", "DeletionProtection", "MaxAllocatedStorage", "AllocatedStorage",
    "BackupRetentionPeriod", "PreferredBackupWindow", "CACertificateIdentifier",
)


def _as_utc(t):
    if isinstance(t, str):
        t = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t


def restore_db_instance_to_point_in_time(self):
    p = self.params
    arn = p.get("SourceDBInstanceAutomatedBackupsArn")
    sources = [k for k in ("SourceDBInstanceIdentifier", "SourceDbiResourceId",
                           "SourceDBInstanceAutomatedBackupsArn") if p.get(k)]
    if not sources:
        # moto restored the Region's first instance when no source was named.
        raise rds_exc.InvalidParameterCombination(
            "Specify one of SourceDBInstanceIdentifier, SourceDbiResourceId or "
            "SourceDBInstanceAutomatedBackupsArn."
        )
    if not arn:
        return _restore_to_point_in_time(self)
    if len(sources) > 1:
        raise rds_exc.InvalidParameterCombination(
            "Specify only one of SourceDBInstanceIdentifier, SourceDbiResourceId and "
            "SourceDBInstanceAutomatedBackupsArn."
        )
    rep = _replications(self.backend).get(arn)
    if rep is None:
        raise _error("DBInstanceAutomatedBackupNotFoundFault", f"Automated backup {arn} not found.")
    restore_time, use_latest = p.get("RestoreTime"), p.get("UseLatestRestorableTime")
    if (restore_time is not None) == bool(use_latest):
        raise rds_exc.InvalidParameterCombination(
            "Specify either RestoreTime or UseLatestRestorableTime, not both and not neither."
        )
    window = rep.window()
    if window is None:
        raise _error("InvalidRestoreFault",
                     f"Automated backup {arn} has no restorable time yet (it is {rep.status}).")
    if restore_time is not None:
        at = _as_utc(restore_time)
        if not window[0] <= at <= window[1]:
            raise _error(
                "InvalidRestoreFault",
                f"The restore time {at.isoformat()} is outside the restorable window of automated "
                f"backup {arn}: {window[0].isoformat()} to {window[1].isoformat()}.",
            )
    t = rep.template()
    if "AllocatedStorage" in p and int(p["AllocatedStorage"]) < t.allocated_storage:
        raise rds_exc.InvalidParameterValue(
            "The allocated storage size can't be less than the source snapshot or backup size."
        )
    # The source's configuration, in this Region: its default security
    # group, subnet group and AZ unless asked (the API reference: "created
    # with most of the original configuration, but in a system-selected
    # Availability Zone, with the default security group, the default subnet
    # group, and the default DB parameter group"; single-AZ by default).
    settings = {
        "db_instance_identifier": p["TargetDBInstanceIdentifier"],
        "db_instance_class": t.db_instance_class,
        "engine": t.engine,
        "engine_version": t.engine_version,
        "allocated_storage": t.allocated_storage,
        "storage_type": t.storage_type,
        "iops": t.iops,
        "port": t.port,
        "db_name": t.db_name,
        "master_username": t.master_username,
        "master_user_password": getattr(t, "_master_user_password", None),
        "license_model": t.license_model,
        "backup_retention_period": t.backup_retention_period,
        "preferred_backup_window": t.preferred_backup_window,
        "storage_encrypted": rep.encrypted,
        "kms_key_id": rep.kms_key_id,
        "multi_az": False,
        "auto_minor_version_upgrade": t.auto_minor_version_upgrade,
        "enable_iam_database_authentication": t.enable_iam_database_authentication,
        "tags": p.get("Tags") or [],
    }
    for key in _OVERRIDES:
        if p.get(key) is not None:
            settings[xform_name(key)] = p[key]  # moto's snake_case names
    db = self.backend.create_db_instance({k: v for k, v in settings.items() if v is not None})  # DBInstanceAlreadyExists: moto's
    db.status = "creating"
    _take_time(db, _available)
    return ActionResult({"DBInstance": db})


def _available(obj):
    if obj.status in ("creating", "pending", "copying"):
        obj.status = "available"
    if hasattr(obj, "percent_progress"):
        obj.percent_progress = 100


# ------------------------------------------------ cross-Region snapshot copies
_copy_db_snapshot = rds_models.RDSBackend.copy_db_snapshot
_copy_db_cluster_snapshot = rds_models.RDSBackend.copy_db_cluster_snapshot


def _other_region(backend, identifier):
    """The source Region of a snapshot named by the ARN of another Region, else None."""
    parsed = _parse_arn(identifier)
    if parsed is None or parsed[1] == backend.region_name:
        return None
    return parsed[1]


def _check_copy_source(source, kind, kms_key_id, encrypted):
    if source.status != "available":
        shape = "InvalidDBSnapshotStateFault" if kind == "snapshot" else "InvalidDBClusterSnapshotStateFault"
        raise _error(shape, f"The source snapshot {source.arn} is {source.status}, not available.")
    # "If you copy an encrypted snapshot to a different Region, then you must
    # specify a KMS key identifier for the destination Region" (API reference).
    if encrypted and not kms_key_id:
        raise rds_exc.KMSKeyNotAccessibleFault(str(kms_key_id))


def copy_db_snapshot(self, source_db_snapshot_identifier, target_db_snapshot_identifier,
                     kms_key_id=None, tags=None, copy_tags=False, **rest):
    src_region = _other_region(self, source_db_snapshot_identifier)
    if src_region is None:
        return _copy_db_snapshot(self, source_db_snapshot_identifier, target_db_snapshot_identifier,
                                 kms_key_id, tags, copy_tags, **rest)
    source = self.get_db_snapshot(source_db_snapshot_identifier)  # DBSnapshotNotFound: moto's
    _check_copy_source(source, "snapshot", kms_key_id, source.encrypted)
    # moto makes the copy (target name, quota, the KMS key of this Region,
    # tags, OriginalSnapshotCreateTime kept); what follows is the cross-Region part.
    snap = _copy_db_snapshot(self, source_db_snapshot_identifier, target_db_snapshot_identifier,
                             kms_key_id, tags, copy_tags, **rest)
    snap.source_region = src_region
    snap.source_db_snapshot_identifier = source.arn
    snap.status = "pending"
    snap.percent_progress = 0
    db = snap.database  # moto's own shallow copy of the source instance
    db.availability_zone = f"{self.region_name}a"
    db.db_subnet_group_name = None  # subnet groups are regional: the default one
    if hasattr(db, "db_subnet_group"):
        del db.db_subnet_group
    db.replicas, db.is_replica, db.source_db_instance_identifier = [], False, None
    if rest.get("option_group_name"):
        db.option_group_name = rest["option_group_name"]
    _take_time(snap, _available)
    return snap


def copy_db_cluster_snapshot(self, source_db_cluster_snapshot_identifier,
                             target_db_cluster_snapshot_identifier, kms_key_id=None,
                             copy_tags=False, tags=None, **rest):
    src_region = _other_region(self, source_db_cluster_snapshot_identifier)
    if src_region is None:
        return _copy_db_cluster_snapshot(self, source_db_cluster_snapshot_identifier,
                                         target_db_cluster_snapshot_identifier, kms_key_id,
                                         copy_tags, tags, **rest)
    source = self.get_db_cluster_snapshot(source_db_cluster_snapshot_identifier)
    _check_copy_source(source, "cluster-snapshot", kms_key_id, source.storage_encrypted)
    snap = _copy_db_cluster_snapshot(self, source_db_cluster_snapshot_identifier,
                                     target_db_cluster_snapshot_identifier, kms_key_id,
                                     copy_tags, tags, **rest)
    snap.source_db_cluster_snapshot_arn = source.arn
    # The copy keeps the source's SnapshotCreateTime (the CLI reference's
    # copy-db-cluster-snapshot example: the copy of rds:myaurora-2019-06-04-09-16
    # reads 2019-06-04T09:16:42.649Z); moto's property reads `created`.
    snap.created = source.snapshot_create_time
    # DBClusterSnapshot's valid statuses: available, copying, creating.
    snap.status = "copying"
    snap.percent_progress = 0
    cluster = snap.cluster  # moto's own shallow copy of the source cluster
    cluster.availability_zones = [f"{self.region_name}{z}" for z in "abc"]
    cluster.db_subnet_group_name = "default"
    # A restored cluster is standalone: not a global member or a replica.
    cluster.global_cluster_identifier = None
    cluster.replication_source_identifier = None
    cluster.read_replica_identifiers = []
    cluster.is_writer = False
    _take_time(snap, _available)
    return snap


_restore_from_db_snapshot = rds_models.RDSBackend.restore_db_instance_from_db_snapshot
_restore_from_cluster_snapshot = rds_models.RDSBackend.restore_db_cluster_from_snapshot


def restore_db_instance_from_db_snapshot(self, from_snapshot_id, overrides):
    """moto's restore, refusing a snapshot that is not available yet."""
    name = from_snapshot_id
    if name and name.startswith("arn:"):
        name = self.extract_snapshot_name_from_arn(name)
    snap = self.database_snapshots.get((name or "").lower())
    if snap is not None and snap.status != "available":
        raise _error("InvalidDBSnapshotStateFault",
                     f"DB snapshot {snap.db_snapshot_identifier} is {snap.status}, not available.")
    return _restore_from_db_snapshot(self, from_snapshot_id, overrides)


def restore_db_cluster_from_snapshot(self, from_snapshot_id, overrides):
    name = from_snapshot_id or ""
    parsed = _parse_arn(name)
    if parsed is not None:
        name = parsed[4]
    snap = self.cluster_snapshots.get(name.lower())
    if snap is not None and snap.status != "available":
        raise _error("InvalidDBClusterSnapshotStateFault",
                     f"DB cluster snapshot {snap.db_cluster_snapshot_identifier} is {snap.status}, "
                     "not available.")
    return _restore_from_cluster_snapshot(self, from_snapshot_id, overrides)


# ------------------------------------------------ orderable instance options
# DescribeOrderableDBInstanceOptions: moto 5.2 answers aurora-postgresql
# (versions 11 only) and Neptune, and an empty list for postgres or mysql:
# every class "not offered". AWS answers, per Region, one OrderableDBInstanceOption per
# engine version, class, license model and storage type offered; Engine is
# required and EngineVersion, DBInstanceClass, LicenseModel and Vpc filter
# (API reference, DescribeOrderableDBInstanceOptions). The world offers the
# classes below for every version of the engines below in every Region,
# less what POST /_drctl/rds/backups/orderable withdrew (a class a Region
# does not offer, as newer classes reach Regions one by one).
_ORDERABLE_ENGINES = {"postgres": "postgresql-license", "mysql": "general-public-license",
                      "mariadb": "general-public-license", "aurora-postgresql": "postgresql-license",
                      "aurora-mysql": "general-public-license"}
_ORDERABLE_CLASSES = ["db.t3.micro", "db.t3.small", "db.t3.medium", "db.t4g.micro", "db.t4g.small",
                      "db.t4g.medium", "db.m5.large", "db.m6g.large", "db.m7g.large", "db.r5.large",
                      "db.r6g.large", "db.r7g.large"]
# Aurora offers memory-optimized and burstable classes and Serverless v2
# (db.serverless), no micro or m classes; its storage type is "aurora".
_AURORA_CLASSES = ["db.t3.medium", "db.t4g.medium", "db.r5.large", "db.r6g.large", "db.r7g.large",
                   "db.serverless"]
_WITHDRAWN = set()  # (region, engine, class)
_moto_orderable = RDSResponse.describe_orderable_db_instance_options


def describe_orderable_db_instance_options(self):
    p = self.params
    engine = p.get("Engine")
    if engine not in _ORDERABLE_ENGINES:
        return _moto_orderable(self)
    region = self.region
    version = p.get("EngineVersion")
    wanted = p.get("DBInstanceClass")
    license_model = p.get("LicenseModel")
    if license_model not in (None, _ORDERABLE_ENGINES[engine]):
        return ActionResult({"OrderableDBInstanceOptions": []})
    if p.get("Vpc") is False or str(p.get("Vpc")).lower() == "false":
        # Every Region offers VPC instances only (EC2-Classic is retired).
        return ActionResult({"OrderableDBInstanceOptions": []})
    zones = [{"Name": f"{region}{z}"} for z in "abc"]
    out = []
    aurora = engine.startswith("aurora-")
    for cls in _AURORA_CLASSES if aurora else _ORDERABLE_CLASSES:
        if (wanted and cls != wanted) or (region, engine, cls) in _WITHDRAWN:
            continue
        out.append({
            "Engine": engine, "EngineVersion": version or "16.3", "DBInstanceClass": cls,
            "LicenseModel": _ORDERABLE_ENGINES[engine], "AvailabilityZones": zones,
            "MultiAZCapable": True, "ReadReplicaCapable": True, "Vpc": True,
            "SupportsStorageEncryption": True, "StorageType": "aurora" if aurora else "gp3",
        })
    return ActionResult({"OrderableDBInstanceOptions": out})


def _orderable_route(method, body):
    """POST /_drctl/rds/backups/orderable {"region", "engine", "class",
    "offered": false|true}: withdraw (or offer again) a class; GET lists
    what is withdrawn."""
    if method == "POST":
        try:
            key = (body["region"], body["engine"], body["class"])
        except KeyError as e:
            return 400, {"error": f"missing {e.args[0]!r}"}
        if body.get("offered", False):
            _WITHDRAWN.discard(key)
        else:
            _WITHDRAWN.add(key)
    elif method != "GET":
        return 405, {"error": f"{method} is not allowed"}
    return 200, {"withdrawn": sorted(list(k) for k in _WITHDRAWN)}


# ------------------------------------------------ /_drctl/rds/backups/config
def route(method, path, body):
    """GET or POST /_drctl/rds/backups/config ({"seconds": 0.5}):
    DRCTL_MOTO_BACKUP_SECONDS for what starts from then on; and
    /_drctl/rds/backups/orderable. (status, JSON-able body)."""
    global BACKUP_SECONDS
    if path == "/_drctl/rds/backups/orderable":
        return _orderable_route(method, body)
    if path != "/_drctl/rds/backups/config":
        return 404, {"error": f"no route {path}"}
    if method == "POST":
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            return 400, {"error": "'seconds' must be a number >= 0"}
        BACKUP_SECONDS = float(seconds)
    elif method != "GET":
        return 405, {"error": f"{method} is not allowed on {path}"}
    return 200, {"seconds": BACKUP_SECONDS}


def _save_instance_backup(self):
    """An instance's first automated snapshot, skipped when one of its name
    exists: moto takes it at creation, named by instance and minute, so an
    instance restored under the name of one renamed a moment ago (drctl
    reprotect parks an old primary; a failback restores the plan's name
    there) failed with DBSnapshotAlreadyExists. AWS takes the first
    automated snapshot in the backup window, not at creation (moto_ext.py
    does the same for clusters)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M")
    if f"rds:{self.db_instance_identifier}-{stamp}" in self.backend.database_snapshots:
        return
    _original_save_instance_backup(self)


_original_save_instance_backup = rds_models.DBInstance.save_automated_backup


def install():
    """Adds the operations and fixes to moto's RDS (idempotent)."""
    if getattr(RDSResponse, "_drctl_backups", False):
        return
    RDSResponse.call_action = _call_action
    RDSResponse.start_db_instance_automated_backups_replication = (
        start_db_instance_automated_backups_replication)
    RDSResponse.stop_db_instance_automated_backups_replication = (
        stop_db_instance_automated_backups_replication)
    RDSResponse.describe_db_instance_automated_backups = describe_db_instance_automated_backups
    RDSResponse.restore_db_instance_to_point_in_time = restore_db_instance_to_point_in_time
    RDSResponse.describe_orderable_db_instance_options = describe_orderable_db_instance_options
    rds_models.RDSBackend.delete_db_instance = delete_db_instance
    rds_models.DBInstance.save_automated_backup = _save_instance_backup
    rds_models.RDSBackend.copy_db_snapshot = copy_db_snapshot
    rds_models.RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot
    rds_models.RDSBackend.restore_db_instance_from_db_snapshot = restore_db_instance_from_db_snapshot
    rds_models.RDSBackend.restore_db_cluster_from_snapshot = restore_db_cluster_from_snapshot
    rds_models.DBInstance.db_instance_automated_backups_replications = property(_instance_replications)
    rds_models.DBInstanceAutomatedBackup.db_instance_automated_backups_replications = property(
        _local_backup_replications)
    RDSResponse._drctl_backups = True
