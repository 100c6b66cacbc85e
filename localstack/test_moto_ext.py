"""Tests of moto_ext.py with boto3 (not drctl's client), against a moto
server started on a free port with the extension, as `up` runs it (one
server for the module: another one to start would cost more than the tests).

    localstack/.venv/moto/bin/python localstack/test_moto_ext.py
"""
import json
import os
import socket
import sys
import threading
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How long a move of a global cluster's writer takes here. A test checks the
# move under way with a call or two after it began, and on a loaded machine
# one call can take longer than a second (issue 37): so seconds, waited for
# to their end (moto_ext.py has no setting to hold a move).
SWITCH_SECONDS = 5.0
# How long an ECS service's scale takes here (DRCTL_MOTO_ECS_SECONDS), for
# the same reason; a test that reads a scale under way checks that its read
# was answered before these seconds were up.
ECS_SECONDS = 5.0

SERVER = {}


def setUpModule():
    port = free_port()
    env = dict(os.environ, DRCTL_MOTO_GLOBAL_SWITCH_SECONDS=str(SWITCH_SECONDS),
               DRCTL_MOTO_ECS_SECONDS=str(ECS_SECONDS))
    proc, log = start(
        "moto_ext",
        [sys.executable, os.path.join(HERE, "moto_ext.py"), "-H", "127.0.0.1", "-p", str(port)],
        env,
    )
    unittest.addModuleCleanup(stop, proc)  # also when setUpModule fails
    SERVER.update(port=port, proc=proc, log=log)
    # Ready when RDS answers (one try per check, a short timeout each).
    probe = client("rds", "us-east-1", Config(connect_timeout=2, read_timeout=10,
                                              retries={"total_max_attempts": 1}))
    wait_until(f"moto_ext.py to answer RDS DescribeGlobalClusters on port {port}",
               lambda: probe.describe_global_clusters() is not None,
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


class GlobalClusterMoves(unittest.TestCase):
    @classmethod
    def rds(cls, region, config=None):
        return client("rds", region, config)

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


CIRCUIT_BREAKER = "ECS deployment circuit breaker: tasks failed to start."


def drctl(method, path, body=None):
    """A request to moto_ext.py's /_drctl/ routes: (HTTP status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{SERVER['port']}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), json.loads(e.read())


class ClusterRename(unittest.TestCase):
    def test_a_renamed_cluster_keeps_its_writer_and_a_new_one_of_the_old_name_has_none(self):
        rds = client("rds", "us-west-2")
        rds.create_db_cluster(DBClusterIdentifier="ren-ledger", Engine="aurora-postgresql",
                              MasterUsername="drctl", MasterUserPassword="reference-only-1")
        rds.create_db_instance(DBInstanceIdentifier="ren-ledger-writer", DBClusterIdentifier="ren-ledger",
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        rds.modify_db_cluster(DBClusterIdentifier="ren-ledger", NewDBClusterIdentifier="ren-ledger-pre-1",
                              ApplyImmediately=True)

        def members(cid):
            (c,) = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"]
            return [m["DBInstanceIdentifier"] for m in c.get("DBClusterMembers", [])]

        self.assertEqual(members("ren-ledger-pre-1"), ["ren-ledger-writer"])
        (w,) = rds.describe_db_instances(DBInstanceIdentifier="ren-ledger-writer")["DBInstances"]
        self.assertEqual(w["DBClusterIdentifier"], "ren-ledger-pre-1")
        rds.create_db_cluster(DBClusterIdentifier="ren-ledger", Engine="aurora-postgresql",
                              MasterUsername="drctl", MasterUserPassword="reference-only-1")
        self.assertEqual(members("ren-ledger"), [])


class PendingMaintenance(unittest.TestCase):
    """DescribePendingMaintenanceActions as RDS answers it: per resource ARN,
    filtered by ResourceIdentifier and by db-instance-id / db-cluster-id
    (identifiers or ARNs); the actions armed through the route."""

    REGION = "us-east-1"

    def arm(self, ident, actions, kind="db", region=None):
        status, _, answer = drctl("POST", "/_drctl/rds/pending-maintenance",
                                  {"region": region or self.REGION, "kind": kind, "id": ident,
                                   "actions": actions})
        self.assertEqual(status, 200, answer)
        self.addCleanup(drctl, "POST", "/_drctl/rds/pending-maintenance",
                        {"region": region or self.REGION, "kind": kind, "id": ident, "actions": []})

    def test_an_armed_action_is_described_as_rds_describes_it(self):
        rds = client("rds", self.REGION)
        self.arm("pm-db", [{"Action": "system-update", "Description": "New Operating System update is available",
                            "AutoAppliedAfterDate": "2026-12-01T00:00:00Z", "OptInStatus": "pending"}])
        self.arm("pm-cluster", [{"Action": "db-upgrade"}], kind="cluster")
        got = rds.describe_pending_maintenance_actions(
            Filters=[{"Name": "db-instance-id", "Values": ["pm-db"]}])["PendingMaintenanceActions"]
        self.assertEqual(len(got), 1, got)
        (one,) = got
        self.assertTrue(one["ResourceIdentifier"].startswith("arn:aws:rds:us-east-1:")
                        and one["ResourceIdentifier"].endswith(":db:pm-db"), one)
        (action,) = one["PendingMaintenanceActionDetails"]
        self.assertEqual((action["Action"], action["OptInStatus"]), ("system-update", "pending"))
        self.assertEqual(action["AutoAppliedAfterDate"].isoformat(), "2026-12-01T00:00:00+00:00")
        # By ARN, as ResourceIdentifier or a filter value; a cluster by its own filter.
        arn = one["ResourceIdentifier"]
        self.assertEqual(len(rds.describe_pending_maintenance_actions(
            ResourceIdentifier=arn)["PendingMaintenanceActions"]), 1)
        self.assertEqual(len(rds.describe_pending_maintenance_actions(
            Filters=[{"Name": "db-instance-id", "Values": [arn]}])["PendingMaintenanceActions"]), 1)
        clusters = rds.describe_pending_maintenance_actions(
            Filters=[{"Name": "db-cluster-id", "Values": ["pm-cluster"]}])["PendingMaintenanceActions"]
        self.assertEqual([c["ResourceIdentifier"].rsplit(":", 2)[1:] for c in clusters], [["cluster", "pm-cluster"]])
        # Another instance, another region: nothing.
        self.assertEqual(rds.describe_pending_maintenance_actions(
            Filters=[{"Name": "db-instance-id", "Values": ["other"]}])["PendingMaintenanceActions"], [])
        self.assertEqual(client("rds", "eu-west-1").describe_pending_maintenance_actions(
            Filters=[{"Name": "db-instance-id", "Values": ["pm-db"]}])["PendingMaintenanceActions"], [])

    def test_an_unknown_filter_and_a_bad_arming_are_refused(self):
        rds = client("rds", self.REGION)
        with self.assertRaises(rds.exceptions.ClientError) as e:
            rds.describe_pending_maintenance_actions(Filters=[{"Name": "engine", "Values": ["x"]}])
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        for body in ({"region": self.REGION, "id": "x", "actions": [{}]},
                     {"region": self.REGION, "id": "x", "kind": "table", "actions": []},
                     {"region": self.REGION, "id": "x", "actions": [{"Action": "a", "ForcedApplyDate": "soon"}]}):
            status, _, answer = drctl("POST", "/_drctl/rds/pending-maintenance", body)
            self.assertEqual(status, 400, (body, answer))


class TargetHealth(unittest.TestCase):
    """A target group's registered instances answer `healthy`, as moto has
    them, until a test makes them fail their checks; then `unhealthy`,
    with AWS's reason and description, until cleared."""

    REGION = "us-east-1"

    def test_a_target_group_fails_its_checks_until_cleared(self):
        ec2 = client("ec2", self.REGION)
        elb = client("elbv2", self.REGION)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        tg = elb.create_target_group(Name=f"tg-{uuid.uuid4().hex[:8]}", Protocol="HTTP",
                                     Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance["InstanceId"]}])

        def health():
            d = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return [(h["TargetHealth"]["State"], h["TargetHealth"].get("Reason"),
                     h["TargetHealth"].get("Description")) for h in d]

        self.assertEqual(health(), [("healthy", None, None)])
        status, _, answer = drctl("POST", "/_drctl/elbv2/health",
                                  {"arn": tg, "reason": "Target.FailedHealthChecks"})
        self.assertEqual(status, 200, answer)
        self.assertEqual(health(), [("unhealthy", "Target.FailedHealthChecks",
                                     "Health checks failed")])
        status, _, answer = drctl("POST", "/_drctl/elbv2/health", {"arn": tg, "reason": None})
        self.assertEqual((status, answer), (200, {"failing": []}))
        self.assertEqual(health(), [("healthy", None, None)])
        self.assertEqual(drctl("POST", "/_drctl/elbv2/health", {"reason": "x"})[0], 400)


class EcsServices(unittest.TestCase):
    REGION = "us-east-1"

    def setUp(self):
        self.ecs = client("ecs", self.REGION)

    def service(self, name, desired):
        """A Fargate service `name` at `desired` tasks in a cluster of its own."""
        cluster = f"{name}-cluster"
        self.ecs.create_cluster(clusterName=cluster)
        self.ecs.register_task_definition(
            family=name, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "w", "image": "busybox", "essential": True}])
        svc = self.ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=name,
                                      desiredCount=desired, launchType="FARGATE")["service"]
        return cluster, svc

    def describe(self, cluster, name, **kw):
        return self.ecs.describe_services(cluster=cluster, services=[name], **kw)["services"][0]

    def primary(self, svc):
        primaries = [d for d in svc["deployments"] if d["status"] == "PRIMARY"]
        self.assertEqual(len(primaries), 1, svc["deployments"])
        return primaries[0]

    def wait_for(self, cluster, name, what, check):
        last = {}

        def seen():
            svc = self.describe(cluster, name)
            last["svc"] = svc
            return svc if check(svc) else None

        return wait_until(lambda: f"{name} {what} (last seen {last.get('svc')})", seen, interval=0.1)

    def test_a_new_service_is_steady_at_once(self):
        cluster, svc = self.service("steady", 4)
        self.assertEqual((svc["desiredCount"], svc["runningCount"], svc["pendingCount"]), (4, 4, 0))
        d = self.primary(self.describe(cluster, "steady"))
        self.assertEqual((d["desiredCount"], d["runningCount"], d["pendingCount"]), (4, 4, 0))
        self.assertEqual(d["rolloutState"], "COMPLETED")
        self.assertEqual(d["rolloutStateReason"], f"ECS deployment {d['id']} completed.")
        c = self.ecs.describe_clusters(clusters=[cluster])["clusters"][0]
        self.assertEqual((c["runningTasksCount"], c["pendingTasksCount"]), (4, 0))

    def test_a_scale_runs_its_tasks_only_after_the_delay(self):
        cluster, svc = self.service("scale", 1)
        before = self.primary(svc)
        t0 = time.monotonic()
        got = self.ecs.update_service(cluster=cluster, service="scale", desiredCount=4)["service"]
        # The answer: the new desired count, the old running count.
        self.assertEqual((got["desiredCount"], got["runningCount"], got["pendingCount"]), (4, 1, 3))
        d = self.primary(got)
        self.assertEqual((d["desiredCount"], d["runningCount"], d["pendingCount"]), (4, 1, 3))
        self.assertEqual(d["rolloutState"], "COMPLETED")
        # Asked again with the same count: the scale under way is left alone.
        again = self.ecs.update_service(cluster=cluster, service="scale", desiredCount=4)["service"]
        read = self.describe(cluster, "scale")
        if time.monotonic() - t0 < ECS_SECONDS:  # answered before the scale's time was up
            self.assertEqual((again["runningCount"], read["runningCount"], read["pendingCount"]), (1, 1, 3))
            self.assertEqual(self.primary(read)["runningCount"], 1)
        done = self.wait_for(cluster, "scale", "to run 4 tasks", lambda s: s["runningCount"] == 4)
        self.assertGreaterEqual(time.monotonic() - t0, ECS_SECONDS)
        self.assertEqual((done["desiredCount"], done["pendingCount"]), (4, 0))
        # No new deployment: the same PRIMARY one, its counts followed, its state kept.
        self.assertEqual(len(done["deployments"]), 1)
        d = self.primary(done)
        self.assertEqual(d["id"], before["id"])
        self.assertEqual((d["desiredCount"], d["runningCount"], d["pendingCount"]), (4, 4, 0))
        self.assertEqual(d["rolloutState"], "COMPLETED")
        self.assertEqual(done["events"][0]["message"], "(service scale) has reached a steady state.")
        c = self.ecs.describe_clusters(clusters=[cluster])["clusters"][0]
        self.assertEqual((c["runningTasksCount"], c["pendingTasksCount"]), (4, 0))
        # Down: the tasks stop after the delay too.
        t1 = time.monotonic()
        got = self.ecs.update_service(cluster=cluster, service="scale", desiredCount=2)["service"]
        self.assertEqual((got["desiredCount"], got["runningCount"], got["pendingCount"]), (2, 4, 0))
        done = self.wait_for(cluster, "scale", "to run 2 tasks", lambda s: s["runningCount"] == 2)
        self.assertGreaterEqual(time.monotonic() - t1, ECS_SECONDS)
        self.assertEqual(self.primary(done)["runningCount"], 2)

    def test_tags_on_a_service(self):
        cluster, svc = self.service("tagged", 1)
        arn = svc["serviceArn"]
        # The long ARN format, which tagging needs.
        self.assertEqual(arn, f"arn:aws:ecs:{self.REGION}:123456789012:service/{cluster}/tagged")
        self.ecs.tag_resource(resourceArn=arn, tags=[{"key": "drctl:drill-run", "value": "r1"},
                                                     {"key": "app", "value": "orders"}])
        tags = {t["key"]: t["value"] for t in self.describe(cluster, "tagged", include=["TAGS"])["tags"]}
        self.assertEqual(tags, {"drctl:drill-run": "r1", "app": "orders"})
        self.assertFalse(self.describe(cluster, "tagged").get("tags"))  # only with include=TAGS
        listed = self.ecs.list_tags_for_resource(resourceArn=arn)["tags"]
        self.assertEqual({t["key"] for t in listed}, {"drctl:drill-run", "app"})
        self.ecs.untag_resource(resourceArn=arn, tagKeys=["drctl:drill-run"])
        tags = self.describe(cluster, "tagged", include=["TAGS"])["tags"]
        self.assertEqual(tags, [{"key": "app", "value": "orders"}])

    def test_an_armed_failure_fails_the_next_scale(self):
        cluster, _ = self.service("failing", 1)
        status, ctype, armed = drctl("POST", "/_drctl/ecs/fail",
                                     {"region": self.REGION, "cluster": cluster, "service": "failing"})
        self.assertEqual((status, ctype), (200, "application/json"), armed)
        self.assertEqual(armed["armed"]["service"], "failing")
        _, _, listed = drctl("GET", "/_drctl/ecs/fail")
        self.assertIn(("failing", cluster), [(a["service"], a["cluster"]) for a in listed["armed"]])
        t0 = time.monotonic()
        got = self.ecs.update_service(cluster=cluster, service="failing", desiredCount=4)["service"]
        self.assertEqual((got["desiredCount"], got["runningCount"]), (4, 1))
        failed = self.wait_for(cluster, "failing", "to fail",
                               lambda s: self.primary(s)["rolloutState"] == "FAILED")
        self.assertGreaterEqual(time.monotonic() - t0, ECS_SECONDS)
        d = self.primary(failed)
        self.assertEqual(d["rolloutStateReason"], CIRCUIT_BREAKER)
        self.assertGreater(d["failedTasks"], 0)
        self.assertEqual((d["desiredCount"], d["runningCount"], d["pendingCount"]), (4, 1, 0))
        self.assertEqual((failed["desiredCount"], failed["runningCount"], failed["pendingCount"]), (4, 1, 0))
        self.assertIn("deployment failed: tasks failed to start.", failed["events"][0]["message"])
        # Used up: the next scale completes, and with it the deployment.
        _, _, listed = drctl("GET", "/_drctl/ecs/fail")
        self.assertNotIn(cluster, [a["cluster"] for a in listed["armed"]])
        self.ecs.update_service(cluster=cluster, service="failing", desiredCount=2)
        done = self.wait_for(cluster, "failing", "to run 2 tasks", lambda s: s["runningCount"] == 2)
        d = self.primary(done)
        self.assertEqual((d["rolloutState"], d["failedTasks"], d["runningCount"]), ("COMPLETED", 0, 2))

    def test_the_routes_answer_json_and_leave_aws_requests_alone(self):
        cluster, _ = self.service("routes", 1)
        target = {"region": self.REGION, "cluster": cluster, "service": "routes"}
        cases = [
            ("POST", "/_drctl/ecs/fail", dict(target, service="nope"), 404),
            ("POST", "/_drctl/ecs/fail", dict(target, region="eu-west-1"), 404),
            ("POST", "/_drctl/ecs/fail", {"cluster": cluster}, 400),
            ("POST", "/_drctl/ecs/fail", dict(target, failedTasks=0), 400),
            ("POST", "/_drctl/ecs/config", {"seconds": -1}, 400),
            ("PUT", "/_drctl/ecs/fail", target, 405),
            ("GET", "/_drctl/nothing", None, 404),
        ]
        for method, path, body, want in cases:
            status, ctype, answer = drctl(method, path, body)
            self.assertEqual((status, ctype), (want, "application/json"), (method, path, body, answer))
            self.assertIn("error", answer)
        # Armed, then cleared: by its names (an ARN names it too), or all at once.
        arn = self.describe(cluster, "routes")["serviceArn"]
        self.assertEqual(drctl("POST", "/_drctl/ecs/fail", dict(target, service=arn, failedTasks=2))[0], 200)
        status, _, cleared = drctl("POST", "/_drctl/ecs/clear", target)
        self.assertEqual(status, 200)
        self.assertEqual([(c["service"], c["failedTasks"]) for c in cleared["cleared"]], [("routes", 2)])
        self.assertEqual(drctl("POST", "/_drctl/ecs/fail", target)[0], 200)
        status, _, cleared = drctl("DELETE", "/_drctl/ecs/fail")
        self.assertIn("routes", [c["service"] for c in cleared["cleared"]])
        # The seconds at run time: 0, the scale is done in UpdateService's answer.
        self.assertEqual(drctl("GET", "/_drctl/ecs/config")[2], {"seconds": ECS_SECONDS})
        self.addCleanup(drctl, "POST", "/_drctl/ecs/config", {"seconds": ECS_SECONDS})
        self.assertEqual(drctl("POST", "/_drctl/ecs/config", {"seconds": 0})[2], {"seconds": 0.0})
        got = self.ecs.update_service(cluster=cluster, service="routes", desiredCount=3)["service"]
        self.assertEqual((got["runningCount"], self.primary(got)["rolloutState"]), (3, "COMPLETED"))
        # AWS requests on the same port are moto's as before.
        self.assertIn("DBClusters", client("rds", self.REGION).describe_db_clusters())
        self.assertEqual(self.ecs.list_services(cluster=cluster)["serviceArns"], [arn])

    def test_update_of_a_missing_service(self):
        cluster, _ = self.service("present", 1)
        cases = [
            (lambda: self.ecs.update_service(cluster=cluster, service="absent", desiredCount=2),
             "ServiceNotFoundException"),
            (lambda: self.ecs.update_service(cluster="no-such-cluster", service="present", desiredCount=2),
             "ClusterNotFoundException"),
        ]
        for call, code in cases:
            with self.assertRaises(ClientError) as c:
                call()
            self.assertEqual(c.exception.response["Error"]["Code"], code)
        # A deleted service is still described (INACTIVE) and cannot be updated.
        self.ecs.delete_service(cluster=cluster, service="present", force=True)
        with self.assertRaises(ClientError) as c:
            self.ecs.update_service(cluster=cluster, service="present", desiredCount=2)
        self.assertEqual(c.exception.response["Error"]["Code"], "ServiceNotActiveException")

    def test_the_seed_makes_the_orders_service_and_puts_it_back(self):
        import seed

        seed.QUIET = True
        ec2 = client("ec2", self.REGION)
        args = (self.ecs, ec2, "orders-ecs-use1-t", "orders-workers-t", "orders-workers-t", 1)
        made = seed.ensure_ecs_service(*args)
        self.assertEqual(made["arn"], f"arn:aws:ecs:{self.REGION}:123456789012:service/orders-ecs-use1-t/orders-workers-t")
        svc = self.describe("orders-ecs-use1-t", "orders-workers-t", include=["TAGS"])
        self.assertEqual((svc["desiredCount"], svc["runningCount"], svc["launchType"]), (1, 1, "FARGATE"))
        self.assertEqual(self.primary(svc)["rolloutState"], "COMPLETED")
        self.assertTrue(svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"])
        # A drill raised it and marked it; re-seeding puts it back and keeps other tags.
        self.ecs.update_service(cluster="orders-ecs-use1-t", service="orders-workers-t", desiredCount=4)
        self.ecs.tag_resource(resourceArn=made["arn"], tags=[{"key": "drctl:drill-run", "value": "r1"},
                                                            {"key": "drctl:drill-restore", "value": "1"},
                                                            {"key": "team", "value": "orders"}])
        self.assertEqual(seed.ensure_ecs_service(*args)["desired"], 1)
        svc = self.describe("orders-ecs-use1-t", "orders-workers-t", include=["TAGS"])
        self.assertEqual(svc["desiredCount"], 1)
        self.assertEqual({t["key"] for t in svc["tags"]}, {"app", "team"})
        self.assertEqual(len(self.ecs.list_services(cluster="orders-ecs-use1-t")["serviceArns"]), 1)




class OneRequestAtATime(unittest.TestCase):
    """moto's backends are dicts and lists that its handlers iterate and
    change without a lock, and moto server answers each request on a thread
    of its own: a DescribeDBInstances while another request made or deleted
    an instance answered 500 (`OrderedDict mutated during iteration`, in CI
    on 2026-11-28, an integration test's own read of the world). The world's
    moto answers one request at a time."""

    def test_two_requests_are_never_answered_at_once(self):
        import moto_ext

        inside, most = [0], [0]

        class Slow:  # stands for moto's application: a request that takes a while
            def __call__(self, environ, start_response):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.05)
                inside[0] -= 1
                start_response("200 OK", [])
                return [b""]

        app = moto_ext._with_routes(Slow)()
        paths = ["/", "/", "/", "/", "/_drctl/ecs/config", "/"]
        threads = [threading.Thread(target=app, args=({"PATH_INFO": p, "REQUEST_METHOD": "GET"},
                                                      lambda *a: None)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(most[0], 1)

class ReadOnce(unittest.TestCase):
    """The speed section of moto_ext.py: what it reads once answers as moto did."""

    def test_eks_still_checks_the_role_arns_partition(self):
        eks = client("eks", "us-east-1")
        vpc = {"subnetIds": ["subnet-1"]}
        with self.assertRaises(ClientError) as c:
            eks.create_cluster(name="bad-role", roleArn="arn:nowhere:iam::123456789012:role/r",
                               resourcesVpcConfig=vpc)
        self.assertEqual(c.exception.response["Error"]["Code"], "InvalidParameterException")
        self.assertIn("Invalid Role Arn", c.exception.response["Error"]["Message"])
        for partition in ("aws", "aws-cn", "aws-us-gov"):
            name = f"good-role-{partition}"
            eks.create_cluster(name=name, roleArn=f"arn:{partition}:iam::123456789012:role/r",
                               resourcesVpcConfig=vpc)
            self.assertEqual(eks.describe_cluster(name=name)["cluster"]["name"], name)
        eks.create_nodegroup(clusterName="good-role-aws", nodegroupName="g", subnets=["subnet-1"],
                             nodeRole="arn:aws:iam::123456789012:role/n")
        with self.assertRaises(ClientError) as c:
            eks.create_nodegroup(clusterName="good-role-aws", nodegroupName="h", subnets=["subnet-1"],
                                 nodeRole="arn:aws:iam::123456789012:user/n")
        self.assertEqual(c.exception.response["Error"]["Code"], "InvalidParameterException")

    def test_the_module_list_is_moto_s_own_read_once(self):
        # In this process: install() swaps the function for the list read
        # at import; it is the same list, and reading it again reads no
        # directory.
        import moto_ext
        from moto import backends

        original = list(backends.list_of_moto_modules())
        moto_ext.install()
        self.assertIs(backends.list_of_moto_modules, moto_ext._list_of_moto_modules)
        self.assertEqual(list(backends.list_of_moto_modules()), original)
        self.assertIn("dynamodb", original)
        listed = []
        real_listdir = os.listdir
        try:
            os.listdir = lambda *a: listed.append(a) or real_listdir(*a)
            list(backends.list_of_moto_modules())
        finally:
            os.listdir = real_listdir
        self.assertEqual(listed, [])

    def test_a_service_found_by_its_module_name_is_still_dispatched(self):
        # The dispatcher takes a host `{service}.{region}.amazonaws.com`
        # whose service is a module's name (DynamoDB's) straight to it: the
        # path that reads the list.
        ddb = client("dynamodb", "eu-west-1")
        ddb.create_table(TableName="read-once", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
        self.assertIn("read-once", ddb.list_tables()["TableNames"])
        self.assertEqual(client("ecs", "eu-west-1").list_clusters()["clusterArns"], [])


if __name__ == "__main__":
    _wait.main(verbosity=2)
