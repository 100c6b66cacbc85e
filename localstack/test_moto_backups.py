"""Tests of moto_backups.py (cross-Region backups and snapshot copies) with
boto3 (not drctl's client), against a moto server started with moto_ext.py
on a free port above 25000, as `up` runs it (one server for the module).

    localstack/.venv/moto/bin/python localstack/test_moto_backups.py

The source is always in us-west-2 and the copy or replica in us-east-1, the
direction of the reference world's failover.
"""
import datetime
import json
import os
import random
import socket
import sys
import time
import unittest
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import _wait
from _wait import PROCESS_START, start, stop, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))

# How long replications stay pending, copies pending/copying and restored
# instances creating here (DRCTL_MOTO_BACKUP_SECONDS). A test that reads a
# state under way right after starting it checks that its read was answered
# before these seconds were up (a loaded machine can take more than a second
# for one call: issue 37), and otherwise only that the state settles.
SECONDS = 3.0

SOURCE, DEST = "us-west-2", "us-east-1"
SERVER = {}


def free_port():
    """A free port above 25000 (the shared world's ports are below)."""
    for _ in range(200):
        port = random.randint(25001, 60999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port above 25000")


def setUpModule():
    port = free_port()
    env = dict(os.environ, DRCTL_MOTO_BACKUP_SECONDS=str(SECONDS))
    proc, log = start(
        "moto_backups",
        [sys.executable, os.path.join(HERE, "moto_ext.py"), "-H", "127.0.0.1", "-p", str(port)],
        env,
    )
    unittest.addModuleCleanup(stop, proc)  # also when setUpModule fails
    SERVER.update(port=port, proc=proc, log=log)
    probe = client("rds", DEST, Config(connect_timeout=2, read_timeout=10,
                                       retries={"total_max_attempts": 1}))
    wait_until(f"moto_ext.py to answer RDS DescribeDBInstanceAutomatedBackups on port {port}",
               lambda: probe.describe_db_instance_automated_backups() is not None,
               timeout=PROCESS_START, interval=0.2, proc=proc, log=log)


def client(service, region, config=None):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{SERVER['port']}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )


def drctl(method, path, body=None):
    """A request to the /_drctl/ routes: (HTTP status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{SERVER['port']}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Base(unittest.TestCase):
    def setUp(self):
        self.west, self.east = client("rds", SOURCE), client("rds", DEST)

    def error(self, call, **kw):
        """The (code, HTTP status) of the error `call(**kw)` answers."""
        with self.assertRaises(ClientError) as c:
            call(**kw)
        r = c.exception.response
        return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]

    def instance(self, ident=None, **kw):
        """A postgres instance in the source Region (backups kept 7 days)."""
        ident = ident or name("src")
        args = dict(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                    AllocatedStorage=30, MasterUsername="admin", MasterUserPassword="password123",
                    BackupRetentionPeriod=7)
        args.update(kw)
        return self.west.create_db_instance(**args)["DBInstance"]

    def backup(self, arn):
        (b,) = self.east.describe_db_instance_automated_backups(
            DBInstanceAutomatedBackupsArn=arn)["DBInstanceAutomatedBackups"]
        return b

    def wait(self, what, read, ok):
        last = {}

        def check():
            last["seen"] = read()
            return last["seen"] if ok(last["seen"]) else None

        return wait_until(lambda: f"{what} (last seen {last.get('seen')})", check, interval=0.1)

    def replicating(self, **kw):
        """A source instance and its backups replicated into us-east-1, once replicating."""
        src = self.instance(**kw)
        b = self.east.start_db_instance_automated_backups_replication(
            SourceDBInstanceArn=src["DBInstanceArn"], SourceRegion=SOURCE)["DBInstanceAutomatedBackup"]
        arn = b["DBInstanceAutomatedBackupsArn"]
        b = self.wait(f"{arn} to replicate", lambda: self.backup(arn),
                      lambda b: b["Status"] == "replicating")
        return src, b


class BackupReplication(Base):
    def test_replication_is_pending_then_replicating_with_a_restore_window(self):
        src = self.instance()
        began = datetime.datetime.now(datetime.timezone.utc)
        t0 = time.monotonic()
        b = self.east.start_db_instance_automated_backups_replication(
            SourceDBInstanceArn=src["DBInstanceArn"], BackupRetentionPeriod=14,
            SourceRegion=SOURCE)["DBInstanceAutomatedBackup"]
        arn = b["DBInstanceAutomatedBackupsArn"]
        # AWS's ARN form (arn:aws:rds:us-east-1:123456789012:auto-backup:ab-...).
        self.assertRegex(arn, r"^arn:aws:rds:us-east-1:\d{12}:auto-backup:ab-[a-z2-7]{38}$")
        self.assertEqual(b["Status"], "pending")
        self.assertEqual(b.get("RestoreWindow", {}), {})
        self.assertEqual((b["DBInstanceArn"], b["Region"], b["DBInstanceIdentifier"]),
                         (src["DBInstanceArn"], SOURCE, src["DBInstanceIdentifier"]))
        self.assertEqual((b["Engine"], b["AllocatedStorage"], b["BackupRetentionPeriod"], b["Port"]),
                         ("postgres", 30, 14, src["Endpoint"]["Port"]))
        self.assertEqual(b["MasterUsername"], "admin")
        read = self.backup(arn)
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(read["Status"], "pending")
        # The source Region lists the replication on the instance and on its backups.
        (db,) = self.west.describe_db_instances(
            DBInstanceIdentifier=src["DBInstanceIdentifier"])["DBInstances"]
        self.assertEqual(db["DBInstanceAutomatedBackupsReplications"],
                         [{"DBInstanceAutomatedBackupsArn": arn}])
        (local,) = self.west.describe_db_instance_automated_backups(
            DBInstanceIdentifier=src["DBInstanceIdentifier"])["DBInstanceAutomatedBackups"]
        self.assertEqual(local["DBInstanceAutomatedBackupsReplications"],
                         [{"DBInstanceAutomatedBackupsArn": arn}])

        b = self.wait(f"{arn} to replicate", lambda: self.backup(arn),
                      lambda b: b["Status"] == "replicating")
        self.assertGreaterEqual(time.monotonic() - t0, SECONDS)
        window = b["RestoreWindow"]
        self.assertLessEqual(window["EarliestTime"], window["LatestTime"])
        self.assertLess(abs((window["EarliestTime"] - began).total_seconds()), 30)
        # Found by the source's identifier and by the status filter too.
        for kw in ({"DBInstanceIdentifier": src["DBInstanceIdentifier"]},
                   {"Filters": [{"Name": "status", "Values": ["replicating"]}]},
                   {"Filters": [{"Name": "db-instance-id", "Values": [src["DBInstanceArn"]]}]}):
            got = self.east.describe_db_instance_automated_backups(**kw)["DBInstanceAutomatedBackups"]
            self.assertIn(arn, [g.get("DBInstanceAutomatedBackupsArn") for g in got], kw)
        got = self.east.describe_db_instance_automated_backups(
            Filters=[{"Name": "status", "Values": ["retained"]}])["DBInstanceAutomatedBackups"]
        self.assertNotIn(arn, [g.get("DBInstanceAutomatedBackupsArn") for g in got])

    def test_refusals_of_start(self):
        src = self.instance()
        start = self.east.start_db_instance_automated_backups_replication
        missing = src["DBInstanceArn"].replace(src["DBInstanceIdentifier"], name("gone"))
        self.assertEqual(self.error(start, SourceDBInstanceArn=missing), ("DBInstanceNotFound", 404))
        # Called in the source's own Region.
        self.assertEqual(self.error(self.west.start_db_instance_automated_backups_replication,
                                    SourceDBInstanceArn=src["DBInstanceArn"]),
                         ("InvalidParameterValue", 400))
        # A KMS key of another Region than the destination.
        self.assertEqual(self.error(start, SourceDBInstanceArn=src["DBInstanceArn"],
                                    KmsKeyId="arn:aws:kms:us-west-2:123456789012:key/x"),
                         ("KMSKeyNotAccessibleFault", 400))
        start(SourceDBInstanceArn=src["DBInstanceArn"])
        self.assertEqual(self.error(start, SourceDBInstanceArn=src["DBInstanceArn"]),
                         ("InvalidDBInstanceAutomatedBackupState", 400))
        no_backups = self.instance(BackupRetentionPeriod=0)
        self.assertEqual(self.error(start, SourceDBInstanceArn=no_backups["DBInstanceArn"]),
                         ("InvalidDBInstanceState", 400))

    def test_stop_replication_retains_the_backups(self):
        src, b = self.replicating()
        arn = b["DBInstanceAutomatedBackupsArn"]
        stopped = self.east.stop_db_instance_automated_backups_replication(
            SourceDBInstanceArn=src["DBInstanceArn"])["DBInstanceAutomatedBackup"]
        # The answer shows them as they were (the CLI reference's example).
        self.assertEqual((stopped["DBInstanceAutomatedBackupsArn"], stopped["Status"]),
                         (arn, "replicating"))
        first = self.backup(arn)
        self.assertEqual(first["Status"], "retained")
        time.sleep(0.05)
        self.assertEqual(self.backup(arn)["RestoreWindow"], first["RestoreWindow"])  # no longer grows
        (db,) = self.west.describe_db_instances(
            DBInstanceIdentifier=src["DBInstanceIdentifier"])["DBInstances"]
        self.assertEqual(db.get("DBInstanceAutomatedBackupsReplications", []), [])
        self.assertEqual(self.error(self.east.stop_db_instance_automated_backups_replication,
                                    SourceDBInstanceArn=src["DBInstanceArn"]),
                         ("InvalidDBInstanceState", 400))
        # Retained backups are still restorable.
        target = name("from-retained")
        got = self.east.restore_db_instance_to_point_in_time(
            SourceDBInstanceAutomatedBackupsArn=arn, TargetDBInstanceIdentifier=target,
            UseLatestRestorableTime=True)["DBInstance"]
        self.assertEqual(got["DBInstanceIdentifier"], target)

    def test_deleting_the_source_retains_the_backups(self):
        src, b = self.replicating()
        self.west.delete_db_instance(DBInstanceIdentifier=src["DBInstanceIdentifier"],
                                     SkipFinalSnapshot=True)
        b = self.backup(b["DBInstanceAutomatedBackupsArn"])
        self.assertEqual(b["Status"], "retained")
        self.assertEqual((b["Engine"], b["AllocatedStorage"]), ("postgres", 30))
        got = self.east.restore_db_instance_to_point_in_time(
            SourceDBInstanceAutomatedBackupsArn=b["DBInstanceAutomatedBackupsArn"],
            TargetDBInstanceIdentifier=name("after-loss"),
            RestoreTime=b["RestoreWindow"]["LatestTime"])["DBInstance"]
        self.assertEqual(got["DBInstanceStatus"], "creating")


class PointInTimeRestore(Base):
    def test_restore_from_the_replicated_backups_makes_a_new_instance(self):
        src, b = self.replicating()
        window = b["RestoreWindow"]
        at = window["EarliestTime"] + (window["LatestTime"] - window["EarliestTime"]) / 2
        target = name("restored")
        t0 = time.monotonic()
        got = self.east.restore_db_instance_to_point_in_time(
            SourceDBInstanceAutomatedBackupsArn=b["DBInstanceAutomatedBackupsArn"],
            TargetDBInstanceIdentifier=target, RestoreTime=at,
            Tags=[{"Key": "drctl:drill", "Value": "x"}])["DBInstance"]
        self.assertEqual(got["DBInstanceStatus"], "creating")
        self.assertTrue(got["DBInstanceArn"].startswith("arn:aws:rds:us-east-1:"), got["DBInstanceArn"])
        self.assertTrue(got["AvailabilityZone"].startswith(DEST), got["AvailabilityZone"])
        self.assertEqual((got["Engine"], got["AllocatedStorage"], got["MasterUsername"]),
                         ("postgres", 30, "admin"))
        self.assertFalse(got["MultiAZ"])
        self.assertEqual(got["TagList"], [{"Key": "drctl:drill", "Value": "x"}])

        def read():
            (db,) = self.east.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"]
            return db

        first = read()
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(first["DBInstanceStatus"], "creating")
        self.wait(f"{target} to be available", read, lambda db: db["DBInstanceStatus"] == "available")
        # The latest restorable time works too; a taken name is refused.
        again = self.east.restore_db_instance_to_point_in_time(
            SourceDBInstanceAutomatedBackupsArn=b["DBInstanceAutomatedBackupsArn"],
            TargetDBInstanceIdentifier=name("latest"), UseLatestRestorableTime=True,
            DBInstanceClass="db.t3.small", MultiAZ=True)["DBInstance"]
        self.assertEqual(again["DBInstanceStatus"], "creating")
        self.assertEqual((again["DBInstanceClass"], again["MultiAZ"]), ("db.t3.small", True))
        self.assertEqual(self.error(self.east.restore_db_instance_to_point_in_time,
                                    SourceDBInstanceAutomatedBackupsArn=b["DBInstanceAutomatedBackupsArn"],
                                    TargetDBInstanceIdentifier=target, UseLatestRestorableTime=True),
                         ("DBInstanceAlreadyExists", 400))

    def test_an_instance_made_under_the_name_of_one_renamed_this_minute(self):
        # drctl reprotect parks an old primary (a rename); a failback then
        # restores the plan's name there, often within the same minute:
        # moto's first automated snapshot, named by instance and minute,
        # refused it (DBSnapshotAlreadyExists).
        ident = name("parked")
        self.instance(ident)
        self.west.modify_db_instance(DBInstanceIdentifier=ident, ApplyImmediately=True,
                                     NewDBInstanceIdentifier=ident + "-pre-0001")
        again = self.instance(ident)
        self.assertEqual(again["DBInstanceIdentifier"], ident)

    def test_a_time_outside_the_window_is_refused(self):
        src, b = self.replicating()
        arn, window = b["DBInstanceAutomatedBackupsArn"], b["RestoreWindow"]
        restore = self.east.restore_db_instance_to_point_in_time
        for at in (window["EarliestTime"] - datetime.timedelta(hours=1),
                   datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)):
            self.assertEqual(self.error(restore, SourceDBInstanceAutomatedBackupsArn=arn,
                                        TargetDBInstanceIdentifier=name("outside"), RestoreTime=at),
                             ("InvalidRestoreFault", 400), at)
        # RestoreTime and UseLatestRestorableTime: exactly one.
        self.assertEqual(self.error(restore, SourceDBInstanceAutomatedBackupsArn=arn,
                                    TargetDBInstanceIdentifier=name("both"),
                                    RestoreTime=window["LatestTime"], UseLatestRestorableTime=True),
                         ("InvalidParameterCombination", 400))
        self.assertEqual(self.error(restore, SourceDBInstanceAutomatedBackupsArn=arn,
                                    TargetDBInstanceIdentifier=name("neither")),
                         ("InvalidParameterCombination", 400))
        # Nothing is restorable while the first snapshot is on its way.
        pending = self.east.start_db_instance_automated_backups_replication(
            SourceDBInstanceArn=self.instance()["DBInstanceArn"])["DBInstanceAutomatedBackup"]
        t0 = time.monotonic()
        code = self.error(restore, SourceDBInstanceAutomatedBackupsArn=pending["DBInstanceAutomatedBackupsArn"],
                          TargetDBInstanceIdentifier=name("too-soon"), UseLatestRestorableTime=True)
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(code, ("InvalidRestoreFault", 400))

    def test_missing_sources_are_not_found(self):
        unknown = "arn:aws:rds:us-east-1:123456789012:auto-backup:ab-" + "a" * 38
        self.assertEqual(self.error(self.east.restore_db_instance_to_point_in_time,
                                    SourceDBInstanceAutomatedBackupsArn=unknown,
                                    TargetDBInstanceIdentifier=name("x"), UseLatestRestorableTime=True),
                         ("DBInstanceAutomatedBackupNotFound", 404))
        self.assertEqual(self.error(self.east.describe_db_instance_automated_backups,
                                    DBInstanceAutomatedBackupsArn=unknown),
                         ("DBInstanceAutomatedBackupNotFound", 404))
        # Replicated backups are found in their own Region only.
        src, b = self.replicating()
        self.assertEqual(self.error(client("rds", "eu-west-1").restore_db_instance_to_point_in_time,
                                    SourceDBInstanceAutomatedBackupsArn=b["DBInstanceAutomatedBackupsArn"],
                                    TargetDBInstanceIdentifier=name("x"), UseLatestRestorableTime=True),
                         ("DBInstanceAutomatedBackupNotFound", 404))
        # No source at all (moto restored the Region's first instance).
        self.assertEqual(self.error(self.east.restore_db_instance_to_point_in_time,
                                    TargetDBInstanceIdentifier=name("x"), UseLatestRestorableTime=True),
                         ("InvalidParameterCombination", 400))

    def test_a_restore_within_one_region_is_moto_s_as_before(self):
        src = self.instance()
        got = self.west.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=src["DBInstanceIdentifier"],
            TargetDBInstanceIdentifier=name("same-region"), UseLatestRestorableTime=True)["DBInstance"]
        self.assertEqual(got["DBInstanceStatus"], "available")


class SnapshotCopies(Base):
    def snapshot(self):
        src = self.instance()
        return self.west.create_db_snapshot(DBInstanceIdentifier=src["DBInstanceIdentifier"],
                                            DBSnapshotIdentifier=name("snap"))["DBSnapshot"]

    def test_a_cross_region_copy_is_pending_then_available_and_restorable(self):
        source = self.snapshot()
        target = name("copy")
        t0 = time.monotonic()
        c = self.east.copy_db_snapshot(SourceDBSnapshotIdentifier=source["DBSnapshotArn"],
                                       TargetDBSnapshotIdentifier=target,
                                       SourceRegion=SOURCE)["DBSnapshot"]
        self.assertEqual((c["Status"], c["PercentProgress"]), ("pending", 0))
        self.assertEqual((c["SourceRegion"], c["SourceDBSnapshotIdentifier"]),
                         (SOURCE, source["DBSnapshotArn"]))
        self.assertTrue(c["DBSnapshotArn"].startswith("arn:aws:rds:us-east-1:"), c["DBSnapshotArn"])
        self.assertEqual(c["SnapshotType"], "manual")
        # A copy keeps OriginalSnapshotCreateTime; its SnapshotCreateTime is
        # its own (botocore's DBSnapshot documentation).
        self.assertEqual(c["OriginalSnapshotCreateTime"], source["OriginalSnapshotCreateTime"])
        self.assertGreaterEqual(c["SnapshotCreateTime"], source["SnapshotCreateTime"])
        restore = self.east.restore_db_instance_from_db_snapshot
        code = self.error(restore, DBInstanceIdentifier=name("too-soon"), DBSnapshotIdentifier=target)
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(code, ("InvalidDBSnapshotState", 400))

        def read():
            (s,) = self.east.describe_db_snapshots(DBSnapshotIdentifier=target)["DBSnapshots"]
            return s

        s = self.wait(f"{target} to be available", read, lambda s: s["Status"] == "available")
        self.assertEqual(s["PercentProgress"], 100)
        self.assertEqual(s["OriginalSnapshotCreateTime"], source["OriginalSnapshotCreateTime"])
        self.assertEqual((s["SourceRegion"], s["SourceDBSnapshotIdentifier"]),
                         (SOURCE, source["DBSnapshotArn"]))

        # An instance restored from the copy, in us-east-1.
        ident = name("from-copy")
        db = restore(DBInstanceIdentifier=ident, DBSnapshotIdentifier=target)["DBInstance"]
        self.assertTrue(db["DBInstanceArn"].startswith("arn:aws:rds:us-east-1:"), db["DBInstanceArn"])
        self.assertTrue(db["AvailabilityZone"].startswith(DEST), db["AvailabilityZone"])
        self.assertEqual((db["Engine"], db["AllocatedStorage"]), ("postgres", 30))
        (found,) = self.east.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
        self.assertEqual(found["DBInstanceIdentifier"], ident)

    def test_copy_refusals(self):
        source = self.snapshot()
        copy = self.east.copy_db_snapshot
        missing = source["DBSnapshotArn"].replace(source["DBSnapshotIdentifier"], name("gone"))
        self.assertEqual(self.error(copy, SourceDBSnapshotIdentifier=missing,
                                    TargetDBSnapshotIdentifier=name("c")), ("DBSnapshotNotFound", 404))
        # An encrypted snapshot needs a KMS key of the destination Region.
        enc = self.instance(StorageEncrypted=True)
        esnap = self.west.create_db_snapshot(DBInstanceIdentifier=enc["DBInstanceIdentifier"],
                                             DBSnapshotIdentifier=name("enc"))["DBSnapshot"]
        self.assertTrue(esnap["Encrypted"])
        self.assertEqual(self.error(copy, SourceDBSnapshotIdentifier=esnap["DBSnapshotArn"],
                                    TargetDBSnapshotIdentifier=name("c")), ("KMSKeyNotAccessibleFault", 400))
        key = client("kms", DEST).create_key()["KeyMetadata"]["Arn"]
        c = copy(SourceDBSnapshotIdentifier=esnap["DBSnapshotArn"], TargetDBSnapshotIdentifier=name("c"),
                 KmsKeyId=key)["DBSnapshot"]
        self.assertEqual((c["Encrypted"], c["KmsKeyId"]), (True, key))
        # A copy is not a source before it is available; a taken name is refused.
        target = name("c")
        first = copy(SourceDBSnapshotIdentifier=source["DBSnapshotArn"], TargetDBSnapshotIdentifier=target)
        self.assertEqual(self.error(copy, SourceDBSnapshotIdentifier=source["DBSnapshotArn"],
                                    TargetDBSnapshotIdentifier=target), ("DBSnapshotAlreadyExists", 400))
        t0 = time.monotonic()
        code = self.error(client("rds", "eu-west-1").copy_db_snapshot,
                          SourceDBSnapshotIdentifier=first["DBSnapshot"]["DBSnapshotArn"],
                          TargetDBSnapshotIdentifier=name("c"))
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(code, ("InvalidDBSnapshotState", 400))

    def test_a_copy_within_one_region_is_moto_s_as_before(self):
        source = self.snapshot()
        c = self.west.copy_db_snapshot(SourceDBSnapshotIdentifier=source["DBSnapshotIdentifier"],
                                       TargetDBSnapshotIdentifier=name("local"))["DBSnapshot"]
        self.assertEqual(c["Status"], "available")
        self.assertNotIn("SourceRegion", c)

    def test_a_cross_region_cluster_snapshot_copy_and_its_restore(self):
        # The source is a global database's writer: a cluster restored from
        # the copy must be standalone, not one more member.
        cluster, gname = name("aur"), name("glob")
        self.west.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql",
                                    MasterUsername="admin", MasterUserPassword="password123")
        gc = self.west.create_global_cluster(
            GlobalClusterIdentifier=gname,
            SourceDBClusterIdentifier=f"arn:aws:rds:us-west-2:123456789012:cluster:{cluster}")
        members = len(gc["GlobalCluster"]["GlobalClusterMembers"])
        source = self.west.create_db_cluster_snapshot(
            DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=name("csnap"))["DBClusterSnapshot"]
        target = name("ccopy")
        t0 = time.monotonic()
        c = self.east.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=source["DBClusterSnapshotArn"],
            TargetDBClusterSnapshotIdentifier=target, SourceRegion=SOURCE)["DBClusterSnapshot"]
        self.assertEqual((c["Status"], c["PercentProgress"]), ("copying", 0))
        self.assertEqual(c["SourceDBClusterSnapshotArn"], source["DBClusterSnapshotArn"])
        self.assertEqual(c["SnapshotCreateTime"], source["SnapshotCreateTime"])
        self.assertTrue(c["DBClusterSnapshotArn"].startswith("arn:aws:rds:us-east-1:"))
        restore = self.east.restore_db_cluster_from_snapshot
        code = self.error(restore, DBClusterIdentifier=name("too-soon"), SnapshotIdentifier=target,
                          Engine="aurora-postgresql")
        if time.monotonic() - t0 < SECONDS:
            self.assertEqual(code, ("InvalidDBClusterSnapshotStateFault", 400))

        def read():
            (s,) = self.east.describe_db_cluster_snapshots(
                DBClusterSnapshotIdentifier=target)["DBClusterSnapshots"]
            return s

        s = self.wait(f"{target} to be available", read, lambda s: s["Status"] == "available")
        self.assertEqual((s["PercentProgress"], s["SnapshotCreateTime"]),
                         (100, source["SnapshotCreateTime"]))

        ident = name("restored-aur")
        got = restore(DBClusterIdentifier=ident, SnapshotIdentifier=target,
                      Engine="aurora-postgresql")["DBCluster"]
        self.assertTrue(got["DBClusterArn"].startswith("arn:aws:rds:us-east-1:"), got["DBClusterArn"])
        self.assertTrue(all(z.startswith(DEST) for z in got["AvailabilityZones"]), got["AvailabilityZones"])
        self.assertNotIn("GlobalClusterIdentifier", got)
        gc = self.west.describe_global_clusters(GlobalClusterIdentifier=gname)["GlobalClusters"][0]
        self.assertEqual(len(gc["GlobalClusterMembers"]), members)


class SecondsKnob(Base):
    def test_the_seconds_are_read_and_set_over_http(self):
        self.assertEqual(drctl("GET", "/_drctl/rds/backups/config"), (200, {"seconds": SECONDS}))
        self.assertEqual(drctl("POST", "/_drctl/rds/backups/config", {"seconds": -1})[0], 400)
        self.assertEqual(drctl("POST", "/_drctl/rds/backups/config", {"seconds": 0}), (200, {"seconds": 0.0}))
        try:
            snap = self.west.create_db_snapshot(DBInstanceIdentifier=self.instance()["DBInstanceIdentifier"],
                                                DBSnapshotIdentifier=name("snap"))["DBSnapshot"]
            target = name("now")
            self.east.copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshotArn"],
                                       TargetDBSnapshotIdentifier=target)
            (s,) = self.east.describe_db_snapshots(DBSnapshotIdentifier=target)["DBSnapshots"]
            self.assertEqual(s["Status"], "available")
        finally:
            self.assertEqual(drctl("POST", "/_drctl/rds/backups/config", {"seconds": SECONDS})[0], 200)
        # The other /_drctl/rds/ routes are still moto_ext.py's.
        self.assertEqual(drctl("GET", "/_drctl/rds/pending-maintenance")[0], 200)


class Orderable(Base):
    def test_a_class_is_offered_for_an_engine_until_withdrawn_in_one_region(self):
        def offered(rds, **kw):
            return rds.describe_orderable_db_instance_options(Engine="postgres", **kw)[
                "OrderableDBInstanceOptions"]
        (one,) = offered(self.east, DBInstanceClass="db.t3.micro", EngineVersion="16.3")
        self.assertEqual((one["Engine"], one["EngineVersion"], one["DBInstanceClass"]),
                         ("postgres", "16.3", "db.t3.micro"))
        self.assertTrue(one["Vpc"])
        self.assertEqual({z["Name"] for z in one["AvailabilityZones"]},
                         {"us-east-1a", "us-east-1b", "us-east-1c"})
        self.assertGreater(len(offered(self.east)), 1)
        self.assertEqual(offered(self.east, DBInstanceClass="db.x9.huge"), [])
        self.assertEqual(offered(self.east, LicenseModel="bring-your-own-license"), [])
        body = {"region": DEST, "engine": "postgres", "class": "db.t3.micro"}
        self.assertEqual(drctl("POST", "/_drctl/rds/backups/orderable", body)[0], 200)
        try:
            self.assertEqual(offered(self.east, DBInstanceClass="db.t3.micro"), [])
            self.assertEqual(len(offered(self.west, DBInstanceClass="db.t3.micro")), 1)
        finally:
            drctl("POST", "/_drctl/rds/backups/orderable", dict(body, offered=True))
        self.assertEqual(len(offered(self.east, DBInstanceClass="db.t3.micro")), 1)
        self.assertEqual(drctl("POST", "/_drctl/rds/backups/orderable", {"region": DEST})[0], 400)
        # Engines moto knows are moto's own.
        neptune = self.east.describe_orderable_db_instance_options(Engine="neptune")
        self.assertIn("OrderableDBInstanceOptions", neptune)

    def test_aurora_offers_its_own_classes_at_any_version(self):
        def offered(**kw):
            return self.east.describe_orderable_db_instance_options(Engine="aurora-postgresql", **kw)[
                "OrderableDBInstanceOptions"]
        (one,) = offered(DBInstanceClass="db.r6g.large", EngineVersion="16.4")
        self.assertEqual((one["EngineVersion"], one["StorageType"]), ("16.4", "aurora"))
        self.assertEqual(len(offered(DBInstanceClass="db.serverless")), 1)
        # No micro classes for Aurora.
        self.assertEqual(offered(DBInstanceClass="db.t3.micro"), [])
        body = {"region": DEST, "engine": "aurora-postgresql", "class": "db.r6g.large"}
        self.assertEqual(drctl("POST", "/_drctl/rds/backups/orderable", body)[0], 200)
        try:
            self.assertEqual(offered(DBInstanceClass="db.r6g.large"), [])
        finally:
            drctl("POST", "/_drctl/rds/backups/orderable", dict(body, offered=True))


if __name__ == "__main__":
    _wait.main(verbosity=2)
