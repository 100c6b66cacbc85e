"""Tests of moto_ext.py with boto3 (not drctl's client), against a moto
server started on a free port with the extension, as `up` runs it.

    localstack/.venv/moto/bin/python localstack/test_moto_ext.py
"""
import os
import socket
import sys
import unittest

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from _wait import PROCESS_START, start, stop, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How long a move of a global cluster's writer takes here. A test checks the
# move under way with a call or two after it began, and on a loaded machine
# one call can take longer than a second (issue 37): so seconds, waited for
# to their end (moto_ext.py has no setting to hold a move; one moto server
# for every test, as another one to start would cost more).
SWITCH_SECONDS = 5.0


class GlobalClusterMoves(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        env = dict(os.environ, DRCTL_MOTO_GLOBAL_SWITCH_SECONDS=str(SWITCH_SECONDS))
        cls.proc, cls.log = start(
            "moto_ext",
            [sys.executable, os.path.join(HERE, "moto_ext.py"), "-H", "127.0.0.1", "-p", str(cls.port)],
            env,
        )
        cls.addClassCleanup(stop, cls.proc)  # also when setUpClass fails
        # Ready when RDS answers (one try per check, a short timeout each).
        probe = cls.rds("us-east-1", Config(connect_timeout=2, read_timeout=10,
                                            retries={"total_max_attempts": 1}))
        wait_until(f"moto_ext.py to answer RDS DescribeGlobalClusters on port {cls.port}",
                   lambda: probe.describe_global_clusters() is not None,
                   timeout=PROCESS_START, interval=0.2, proc=cls.proc, log=cls.log)

    @classmethod
    def rds(cls, region, config=None):
        return boto3.client(
            "rds",
            region_name=region,
            endpoint_url=f"http://127.0.0.1:{cls.port}",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )

    def world(self, name):
        """A global cluster with a writer in us-west-2 and a secondary in us-east-1."""
        west, east = self.rds("us-west-2"), self.rds("us-east-1")
        w = west.create_db_cluster(
            DBClusterIdentifier=f"{name}-west",
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password123",
        )["DBCluster"]
        west.create_global_cluster(
            GlobalClusterIdentifier=name, SourceDBClusterIdentifier=w["DBClusterArn"]
        )
        e = east.create_db_cluster(
            DBClusterIdentifier=f"{name}-east",
            Engine="aurora-postgresql",
            GlobalClusterIdentifier=name,
        )["DBCluster"]
        return west, east, w["DBClusterArn"], e["DBClusterArn"]

    def members(self, client, name):
        gc = client.describe_global_clusters(GlobalClusterIdentifier=name)["GlobalClusters"][0]
        return gc, {m["DBClusterArn"]: m["IsWriter"] for m in gc["GlobalClusterMembers"]}

    def wait_available(self, client, name):
        """The writers of global cluster `name` once its move is over."""
        last = {}

        def settled():
            gc, writers = self.members(client, name)
            last["gc"] = gc
            return writers if gc["Status"] == "available" and not gc.get("FailoverState") else None

        return wait_until(lambda: f"{name} to settle (last seen {last.get('gc')})", settled,
                          interval=0.1)

    def test_switchover_takes_time_then_swaps_the_writer(self):
        west, east, w, e = self.world("gsw")
        gc = east.switchover_global_cluster(GlobalClusterIdentifier="gsw", TargetDbClusterIdentifier=e)[
            "GlobalCluster"
        ]
        self.assertEqual(gc["Status"], "switching-over")
        self.assertEqual(gc["FailoverState"]["FromDbClusterArn"], w)
        self.assertEqual(gc["FailoverState"]["ToDbClusterArn"], e)
        self.assertFalse(gc["FailoverState"]["IsDataLossAllowed"])
        # Under way: the writer has not moved yet, and a second move is refused.
        _, writers = self.members(east, "gsw")
        self.assertEqual(writers, {w: True, e: False})
        with self.assertRaises(ClientError) as c:
            east.switchover_global_cluster(GlobalClusterIdentifier="gsw", TargetDbClusterIdentifier=e)
        self.assertEqual(c.exception.response["Error"]["Code"], "InvalidGlobalClusterStateFault")
        writers = self.wait_available(east, "gsw")
        self.assertEqual(writers, {w: False, e: True})
        # No snapshot of a planned move.
        snaps = west.describe_db_cluster_snapshots(DBClusterIdentifier="gsw-west")["DBClusterSnapshots"]
        self.assertFalse([s for s in snaps if "unplanned-global-failover" in s["DBClusterSnapshotIdentifier"]])

    def test_unplanned_failover_keeps_a_snapshot_of_the_old_writer(self):
        west, east, w, e = self.world("gfo")
        gc = east.failover_global_cluster(
            GlobalClusterIdentifier="gfo", TargetDbClusterIdentifier=e, AllowDataLoss=True
        )["GlobalCluster"]
        self.assertEqual(gc["Status"], "failing-over")
        self.assertTrue(gc["FailoverState"]["IsDataLossAllowed"])
        self.assertEqual(self.wait_available(east, "gfo"), {w: False, e: True})
        snaps = west.describe_db_cluster_snapshots(DBClusterIdentifier="gfo-west")["DBClusterSnapshots"]
        names = [s["DBClusterSnapshotIdentifier"] for s in snaps]
        self.assertTrue(
            any(n.startswith("rds:unplanned-global-failover-gfo-west-") for n in names), names
        )

    def test_failover_with_switchover_true_is_a_switchover(self):
        _, east, w, e = self.world("gfs")
        gc = east.failover_global_cluster(
            GlobalClusterIdentifier="gfs", TargetDbClusterIdentifier=e, Switchover=True
        )["GlobalCluster"]
        self.assertEqual(gc["Status"], "switching-over")
        self.assertEqual(self.wait_available(east, "gfs"), {w: False, e: True})

    def test_errors_as_aws_sends_them(self):
        west, east, w, e = self.world("gerr")
        cases = [
            (lambda: east.failover_global_cluster(GlobalClusterIdentifier="gerr", TargetDbClusterIdentifier=e),
             "InvalidParameterCombination"),
            (lambda: east.failover_global_cluster(
                GlobalClusterIdentifier="gerr", TargetDbClusterIdentifier=e, AllowDataLoss=True, Switchover=True),
             "InvalidParameterCombination"),
            (lambda: east.switchover_global_cluster(GlobalClusterIdentifier="nope", TargetDbClusterIdentifier=e),
             "GlobalClusterNotFoundFault"),
            (lambda: east.switchover_global_cluster(GlobalClusterIdentifier="gerr", TargetDbClusterIdentifier=w),
             "InvalidParameterValue"),
            (lambda: east.switchover_global_cluster(
                GlobalClusterIdentifier="gerr", TargetDbClusterIdentifier="arn:aws:rds:us-east-1:123456789012:cluster:other"),
             "InvalidParameterValue"),
        ]
        for call, code in cases:
            with self.assertRaises(ClientError) as c:
                call()
            self.assertEqual(c.exception.response["Error"]["Code"], code)
        with self.assertRaises(ClientError) as c:
            east.switchover_global_cluster(GlobalClusterIdentifier="nope", TargetDbClusterIdentifier=e)
        self.assertEqual(c.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    def test_detach_from_another_region_makes_a_standalone_writer(self):
        west, east, w, e = self.world("gdt")
        gc = east.remove_from_global_cluster(GlobalClusterIdentifier="gdt", DbClusterIdentifier=e)[
            "GlobalCluster"
        ]
        self.assertEqual([m["DBClusterArn"] for m in gc["GlobalClusterMembers"]], [w])
        c = east.describe_db_clusters(DBClusterIdentifier="gdt-east")["DBClusters"][0]
        self.assertFalse(c.get("GlobalClusterIdentifier"))

    def test_a_global_cluster_rebuilt_from_a_detached_member_in_another_region(self):
        """What drctl reprotect does after a detach: the old members leave,
        the empty global cluster is deleted (asked in us-east-1, not where it
        was made), made again from the detached cluster, and a new secondary
        joins it; the old writer is renamed, data kept."""
        west, east, w, e = self.world("grb")
        east.remove_from_global_cluster(GlobalClusterIdentifier="grb", DbClusterIdentifier=e)
        with self.assertRaises(ClientError) as c:
            east.delete_global_cluster(GlobalClusterIdentifier="grb")
        self.assertEqual(c.exception.response["Error"]["Code"], "InvalidGlobalClusterStateFault")
        west.remove_from_global_cluster(GlobalClusterIdentifier="grb", DbClusterIdentifier=w)
        east.delete_global_cluster(GlobalClusterIdentifier="grb")
        with self.assertRaises(ClientError) as c:
            east.describe_global_clusters(GlobalClusterIdentifier="grb")
        self.assertEqual(c.exception.response["Error"]["Code"], "GlobalClusterNotFoundFault")
        west.modify_db_cluster(DBClusterIdentifier="grb-west", NewDBClusterIdentifier="grb-west-pre-x",
                               ApplyImmediately=True)
        east.create_global_cluster(GlobalClusterIdentifier="grb", SourceDBClusterIdentifier=e)
        n = west.create_db_cluster(DBClusterIdentifier="grb-west", Engine="aurora-postgresql",
                                   GlobalClusterIdentifier="grb")["DBCluster"]
        _, writers = self.members(east, "grb")
        self.assertEqual(writers, {e: True, n["DBClusterArn"]: False})
        old = west.describe_db_clusters(DBClusterIdentifier="grb-west-pre-x")["DBClusters"][0]
        self.assertFalse(old.get("GlobalClusterIdentifier"))

    def test_a_clone_of_a_secondary_is_a_standalone_cluster(self):
        """A drill's copy: RestoreDBClusterToPointInTime (copy-on-write) of the
        secondary leaves the global cluster's members as they were, carries
        only the tags asked for, and takes a writer instance."""
        west, east, w, e = self.world("gcl")
        east.add_tags_to_resource(ResourceName=e, Tags=[{"Key": "drctl:replica-lag", "Value": "2"}])
        _, before = self.members(east, "gcl")
        c = east.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier="gcl-copy",
            SourceDBClusterIdentifier="gcl-east",
            RestoreType="copy-on-write",
            UseLatestRestorableTime=True,
            Tags=[{"Key": "drctl:drill-run", "Value": "r1"}],
        )["DBCluster"]
        self.assertFalse(c.get("GlobalClusterIdentifier"))
        self.assertEqual(c["TagList"], [{"Key": "drctl:drill-run", "Value": "r1"}])
        _, after = self.members(east, "gcl")
        self.assertEqual(after, before)
        self.assertEqual(after, {w: True, e: False})
        # The name is taken: refused, the copy left as it is.
        with self.assertRaises(ClientError) as again:
            east.restore_db_cluster_to_point_in_time(
                DBClusterIdentifier="gcl-copy", SourceDBClusterIdentifier="gcl-east",
                RestoreType="copy-on-write", UseLatestRestorableTime=True,
            )
        self.assertEqual(again.exception.response["Error"]["Code"], "DBClusterAlreadyExistsFault")
        kept = east.describe_db_clusters(DBClusterIdentifier="gcl-copy")["DBClusters"][0]
        self.assertEqual(kept["TagList"], [{"Key": "drctl:drill-run", "Value": "r1"}])
        # Without Tags, none of the source's.
        bare = east.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier="gcl-bare", SourceDBClusterIdentifier="gcl-east",
            RestoreType="copy-on-write", UseLatestRestorableTime=True,
        )["DBCluster"]
        self.assertEqual(bare.get("TagList", []), [])
        self.assertFalse(bare.get("GlobalClusterIdentifier"))
        # A writer instance; then the copy and its writer go, production stays.
        east.create_db_instance(DBInstanceIdentifier="gcl-copy-w", DBClusterIdentifier="gcl-copy",
                                Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        got = east.describe_db_clusters(DBClusterIdentifier="gcl-copy")["DBClusters"][0]
        self.assertEqual([(m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in got["DBClusterMembers"]],
                         [("gcl-copy-w", True)])
        east.delete_db_instance(DBInstanceIdentifier="gcl-copy-w", SkipFinalSnapshot=True)
        for name in ("gcl-copy", "gcl-bare"):
            east.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
        _, after = self.members(east, "gcl")
        self.assertEqual(after, {w: True, e: False})
        source = east.describe_db_clusters(DBClusterIdentifier="gcl-east")["DBClusters"][0]
        self.assertEqual(source.get("GlobalClusterIdentifier"), "gcl")

    def test_a_cluster_made_again_at_once_under_its_name(self):
        west = self.rds("us-west-2")
        for _ in range(2):
            west.create_db_cluster(DBClusterIdentifier="again", Engine="aurora-postgresql",
                                   MasterUsername="admin", MasterUserPassword="password123")
            west.delete_db_cluster(DBClusterIdentifier="again", SkipFinalSnapshot=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
