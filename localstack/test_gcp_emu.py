"""Tests of localstack/gcp_emu.py with a client that is not drctl's (urllib).

Two kinds of checks:

* behaviour: operations that take time, their effects when DONE, failures
  armed on an operation, Google's errors, the replica lag series;
* contract: the emulator's answers have the shape of real Cloud SQL answers
  recorded on Google Cloud (localstack/contract/*_http.log, from Config
  Connector's mockgcp golden logs) and of the APIs' discovery documents
  (localstack/contract/*.discovery.json): every field drctl reads is there
  with the recorded type, and every field the emulator sends is one the API
  declares, with the declared type.

Run: python3 localstack/test_gcp_emu.py (scripts/test runs it). It starts its
own emulator on a free port and stops it.
"""
import json
import os
import socket
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import _wait
from _wait import PROCESS_START, start, stop, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRACT = os.path.join(HERE, "contract")
P = "emu-test"
OP_SECONDS = 0.4  # the tests' Cloud SQL operations' duration (set in setUp)
# Issue 37: a state that lasts a fraction of a second (an operation PENDING
# or RUNNING, a DNS change `pending`, a rollout `reconciling`...) is missed
# by a test on a loaded machine, where one call can take longer than that.
# So a test that checks such a state makes it last, through the emulator's
# admin settings (`/emu/config` and its kin), which are read on every call,
# also for what is already under way:
# HOLD, a duration that keeps what is under way where it is until the test
# sets the duration back (then it ends at once, if its time has passed);
HOLD = 3600.0
# LONG, for a state the emulator only enters after some time (RUNNING after
# a quarter of the operation's duration, VERIFYING after 60 % of a VM's):
# it lasts seconds, not tenths, and the test waits for it, then ends it.
LONG = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emu:
    """gcp_emu.py on a free port, its output in a kept log file (self.log);
    ready when it answers /emu/health."""

    def __init__(self):
        self.port = free_port()
        env = dict(os.environ, DRCTL_GCP_PORT=str(self.port), DRCTL_GCP_OP_SECONDS=str(OP_SECONDS))
        self.proc, self.log = start("gcp_emu", [sys.executable, os.path.join(HERE, "gcp_emu.py")], env)
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_until(f"gcp_emu.py to answer GET {self.url}/emu/health",
                       lambda: self.call("GET", "/emu/health")[0] == 200,
                       timeout=PROCESS_START, proc=self.proc, log=self.log)
        except BaseException:
            self.stop()
            raise

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stop(self):
        stop(self.proc)


def recorded(log):
    """(method, path, status, response body) of each exchange of a golden log."""
    out = []
    with open(os.path.join(CONTRACT, log)) as f:
        text = f.read()
    for block in text.split("\n---\n"):
        lines = block.strip("\n").split("\n")
        if not lines or " " not in lines[0]:
            continue
        method, url = lines[0].split(" ", 1)
        status_at = next(i for i, l in enumerate(lines) if l[:3].isdigit() and l[3:4] == " ")
        status = int(lines[status_at][:3])
        rest = "\n".join(lines[status_at + 1:])
        body = rest[rest.find("\n\n") + 2:] if "\n\n" in rest else ""
        path = url.split("googleapis.com", 1)[1].split("?")[0]
        out.append((method, path, status, json.loads(body) if body.strip() else None))
    return out


def type_of(v):
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}[type(v)]


def same_shape(test, want, got, where, fields):
    """Each of `fields` (dotted, `[]` for array items) in the recorded `want`
    is in `got` with the same JSON type."""
    for f in fields:
        w, g = want, got
        for part in f.split("."):
            if part.endswith("[]"):
                part = part[:-2]
                w, g = w[part][0], g[part][0]
            else:
                test.assertIn(part, g, f"{where}: {f} missing")
                w, g = w[part], g[part]
        test.assertEqual(type_of(g), type_of(w), f"{where}: {f}")


def conforms(test, doc, schema, value, where):
    """`value` uses only the fields `schema` declares, with their types."""
    if "$ref" in schema:
        schema = doc["schemas"].get(schema["$ref"])
        if schema is None:  # a schema outside the stored subset: not checked
            return
    t = schema.get("type")
    if t == "object" and "properties" in schema:
        test.assertIsInstance(value, dict, where)
        for k, v in value.items():
            test.assertIn(k, schema["properties"], f"{where}: `{k}` is not in the API")
            conforms(test, doc, schema["properties"][k], v, f"{where}.{k}")
    elif t == "object" and "additionalProperties" in schema:
        for k, v in value.items():
            conforms(test, doc, schema["additionalProperties"], v, f"{where}.{k}")
    elif t == "array":
        test.assertIsInstance(value, list, where)
        for i, v in enumerate(value):
            conforms(test, doc, schema["items"], v, f"{where}[{i}]")
    elif t == "string":
        test.assertIsInstance(value, str, where)
    elif t == "boolean":
        test.assertIsInstance(value, bool, where)
    elif t in ("integer", "number"):
        test.assertIsInstance(value, (int, float), where)


def discovery(name):
    with open(os.path.join(CONTRACT, name)) as f:
        return json.load(f)


SQL = discovery("sqladmin.v1.discovery.json")
MON = discovery("monitoring.v3.discovery.json")
INSTANCE_FIELDS = ["kind", "name", "project", "region", "state", "databaseVersion", "backendType",
                   "connectionName", "createTime", "etag", "gceZone", "instanceType", "selfLink",
                   "ipAddresses[].ipAddress", "ipAddresses[].type", "settings.tier",
                   "settings.edition", "settings.availabilityType", "settings.kind"]
OP_FIELDS = ["kind", "name", "operationType", "status", "insertTime", "targetId", "targetLink",
             "targetProject", "selfLink", "user"]


class GcpEmuTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.call("POST", "/emu/reset", {})
        self.op_seconds(OP_SECONDS)
        self.seed("west", "us-central1")
        self.seed("east", "us-east4", masterInstanceName="west", drReplica=True, lag=3.5)

    def seed(self, name, region, **kw):
        s, b = self.emu.call("POST", "/emu/instances",
                             dict({"project": P, "name": name, "region": region}, **kw))
        self.assertEqual(s, 200, b)
        return b

    def get(self, name):
        return self.emu.call("GET", f"/v1/projects/{P}/instances/{name}")

    def op_seconds(self, seconds):
        """Sets how long operations take (those under way too: HOLD keeps
        them where they are, an end set back lands them once due)."""
        s, b = self.emu.call("POST", "/emu/config", {"opSeconds": seconds})
        self.assertEqual(s, 200, b)

    def wait(self, op, status="DONE"):
        """The operation once `status` (or DONE, which ends the wait: a
        status passed is not waited for), and the statuses seen on the way."""
        seen = [op["status"]]

        def reached():
            s, got = self.emu.call("GET", f"/v1/projects/{P}/operations/{op['name']}")
            seen.append(got.get("status") if s == 200 else s)
            return (s, got) if s != 200 or got["status"] in (status, "DONE") else None

        s, got = wait_until(lambda: f"operation {op['name']} to be {status} (seen {seen})", reached)
        self.assertEqual((s, got["status"]), (200, status), (got, seen))
        return got, seen

    # ------------------------------------------------------------ behaviour
    def test_promote_takes_time_and_lands_when_done(self):
        self.op_seconds(HOLD)  # under way until the test lets it end
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.assertEqual((s, op["status"], op["operationType"]), (200, "PENDING", "PROMOTE_REPLICA"))
        self.assertEqual(self.get("east")[1]["instanceType"], "READ_REPLICA_INSTANCE")
        # RUNNING from a quarter of LONG on, for seconds: waited for, then ended.
        self.op_seconds(LONG)
        _, seen = self.wait(op, "RUNNING")
        self.op_seconds(OP_SECONDS)
        done, more = self.wait(op)
        self.assertIn("RUNNING", seen + more)
        self.assertNotIn("error", done)
        east = self.get("east")[1]
        self.assertEqual(east["instanceType"], "CLOUD_SQL_INSTANCE")
        self.assertNotIn("masterInstanceName", east)
        self.assertNotIn("replicaNames", self.get("west")[1])
        # Once DONE, a second promotion is refused as Google refuses it.
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.assertEqual((s, err["error"]["status"]), (400, "FAILED_PRECONDITION"))

    def test_a_second_write_while_one_runs_is_refused(self):
        self.op_seconds(HOLD)
        s, _ = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"))

    def test_dr_failover_needs_the_dr_replica(self):
        self.seed("other", "europe-west1", masterInstanceName="west")
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/other/promoteReplica?failover=true")
        self.assertEqual(s, 400, err)
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica?failover=true")
        self.assertEqual(s, 200, op)
        self.wait(op)
        east = self.get("east")[1]
        self.assertEqual(east["instanceType"], "CLOUD_SQL_INSTANCE")
        # The old primary's other replica follows the new primary.
        self.assertEqual(self.get("other")[1]["masterInstanceName"], "east")

    def test_after_a_dr_failover_the_old_primary_rejoins_and_can_be_designated(self):
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica?failover=true")
        # West rejoins an operation's time (OP_SECONDS) after the failover is
        # DONE: a read after the one that saw it DONE may come too late on a
        # loaded machine. The emulator moves on at each call, so with no call
        # until the operation's time has passed, the next one (one list of
        # both instances) lands the failover, and shows it with west not
        # following yet: the rejoin is due an operation's time after that.
        began = time.time()  # after the operation's start: the answer came
        wait_until("the failover's time to pass", lambda: time.time() - began > OP_SECONDS + 0.1)
        s, listed = self.emu.call("GET", f"/v1/projects/{P}/instances")
        self.assertEqual(s, 200, listed)
        at_done = {i["name"]: i for i in listed["items"]}
        self.assertEqual(at_done["east"]["instanceType"], "CLOUD_SQL_INSTANCE", "landed")
        self.assertNotIn("masterInstanceName", at_done["west"])
        done, _ = self.wait(op)
        self.assertNotIn("error", done)

        # Its region answers: an operation's time on, west follows east.
        def following():
            west = self.get("west")[1]
            return west if west.get("masterInstanceName") else None

        west = wait_until("west (the old primary) to follow a primary again", following)
        self.assertEqual((west["masterInstanceName"], west["replicationCluster"]["drReplica"]),
                         ("east", False))
        self.assertIn("west", self.get("east")[1]["replicaNames"])
        # Not the DR replica yet: a switchover back is refused until the
        # primary designates it (instances.patch).
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west/switchover")
        self.assertEqual(s, 400, err)
        s, err = self.emu.call("PATCH", f"/v1/projects/{P}/instances/east",
                               {"replicationCluster": {"failoverDrReplicaName": "nope"}})
        self.assertEqual(s, 400, err)
        s, op = self.emu.call("PATCH", f"/v1/projects/{P}/instances/east",
                              {"replicationCluster": {"failoverDrReplicaName": "west"}})
        self.assertEqual((s, op["operationType"]), (200, "UPDATE"))
        self.wait(op)
        self.assertEqual(self.get("east")[1]["replicationCluster"]["failoverDrReplicaName"], "west")
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/west/switchover")
        self.assertEqual(s, 200, op)
        self.wait(op)
        self.assertEqual(self.get("west")[1]["instanceType"], "CLOUD_SQL_INSTANCE")

    def test_switchover_swaps_the_roles(self):
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/switchover")
        self.assertEqual((s, op["operationType"]), (200, "SWITCHOVER"))
        self.wait(op)
        east, west = self.get("east")[1], self.get("west")[1]
        self.assertEqual(east["instanceType"], "CLOUD_SQL_INSTANCE")
        self.assertEqual(east["replicaNames"], ["west"])
        self.assertEqual(east["replicationCluster"]["failoverDrReplicaName"], "west")
        # As recorded on Google Cloud: after a switchover the old primary
        # names its new primary as `project:instance`.
        self.assertEqual((west["instanceType"], west["masterInstanceName"]),
                         ("READ_REPLICA_INSTANCE", f"{P}:east"))

    # ------------------------------------------------------------ write endpoints
    def give_write_endpoint(self):
        s, b = self.emu.call("POST", "/emu/sql/write-endpoints", {"project": P, "name": "west"})
        self.assertEqual(s, 200, b)
        return b["name"]

    def resolves_to(self, endpoint):
        """The primary the world's DNS answers `endpoint` with (None: none)."""
        _, b = self.emu.call("GET", "/emu/sql/write-endpoints")
        return next((e["primary"] for e in b["endpoints"] if e["name"] == endpoint), "absent")

    def test_a_write_endpoint_is_the_clusters_and_has_the_apis_shape(self):
        ep = self.give_write_endpoint()
        self.assertTrue(ep.endswith(".global.sql-psa.goog."), ep)
        for name in ("west", "east"):
            inst = self.get(name)[1]
            self.assertEqual(inst["replicationCluster"]["psaWriteEndpoint"], ep, name)
            conforms(self, SQL, {"$ref": "DatabaseInstance"}, inst, name)
        self.assertEqual(self.resolves_to(ep), "west")
        # A replica that is not the DR replica is no member.
        self.seed("other", "us-east4", masterInstanceName="west", lag=1.0)
        self.assertNotIn("psaWriteEndpoint", self.get("other")[1].get("replicationCluster", {}))

    def test_a_switchover_and_a_dr_failover_move_the_write_endpoint_a_plain_promotion_does_not(self):
        ep = self.give_write_endpoint()
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/switchover")
        self.wait(op)
        self.assertEqual(self.resolves_to(ep), "east")
        self.assertEqual(self.get("west")[1]["replicationCluster"]["psaWriteEndpoint"], ep)
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/west/promoteReplica?failover=true")
        self.wait(op)
        self.assertEqual(self.resolves_to(ep), "west")
        # The old primary is no member until it is designated again.
        self.assertNotIn("psaWriteEndpoint", self.get("east")[1].get("replicationCluster") or {})
        self.emu.call("POST", "/emu/reset", {})
        self.seed("west", "us-central1")
        self.seed("east", "us-east4", masterInstanceName="west", drReplica=True, lag=1.0)
        ep = self.give_write_endpoint()
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.wait(op)
        # A plain promotion leaves the cluster: the endpoint stays with west.
        self.assertEqual(self.resolves_to(ep), "west")
        self.assertNotIn("psaWriteEndpoint", self.get("east")[1].get("replicationCluster") or {})

    def test_an_armed_failure_ends_the_operation_with_its_error(self):
        self.emu.call("POST", "/emu/fail", {"project": P, "name": "east",
                                            "operationType": "PROMOTE_REPLICA", "message": "boom"})
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        done, _ = self.wait(op)
        self.assertEqual(done["error"]["errors"][0]["message"], "boom")
        conforms(self, SQL, {"$ref": "Operation"}, done, "failed operation")
        self.assertEqual(self.get("east")[1]["instanceType"], "READ_REPLICA_INSTANCE")

    def old_primary_ops(self, kind):
        """West's (the old primary's) operations of `kind`, newest first."""
        s, ops = self.emu.call("GET", f"/v1/projects/{P}/operations?instance=west")
        self.assertEqual(s, 200, ops)
        return [o for o in ops.get("items", []) if o["operationType"] == kind]

    def test_the_old_primarys_side_is_an_operation_of_its_own(self):
        # Both kinds are Google's (sqladmin's discovery document), not ours.
        kinds = SQL["schemas"]["Operation"]["properties"]["operationType"]["enum"]
        self.assertIn("RECONFIGURE_OLD_PRIMARY", kinds)
        self.assertIn("SWITCHOVER_TO_REPLICA", kinds)
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica?failover=true")
        self.wait(op)
        # Started once the promotion is DONE, on the old primary.
        (old,) = wait_until("west's RECONFIGURE_OLD_PRIMARY",
                            lambda: self.old_primary_ops("RECONFIGURE_OLD_PRIMARY") or None)
        conforms(self, SQL, {"$ref": "Operation"}, old, "RECONFIGURE_OLD_PRIMARY")
        self.assertEqual(old["targetId"], "west")
        done, _ = self.wait(old)
        self.assertNotIn("error", done)
        self.assertEqual(self.get("west")[1]["masterInstanceName"], "east")

    def test_the_old_primarys_operation_stands_still_while_its_zone_is_down(self):
        s, b = self.emu.call("POST", "/emu/outage", {"project": P, "name": "west"})
        self.assertEqual((s, b["down"]), (200, [f"{P}/west"]))
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica?failover=true")
        self.wait(op)
        (old,) = wait_until("west's RECONFIGURE_OLD_PRIMARY",
                            lambda: self.old_primary_ops("RECONFIGURE_OLD_PRIMARY") or None)
        began = time.time()
        wait_until("several operations' time to pass", lambda: time.time() - began > 4 * OP_SECONDS)
        (still,) = self.old_primary_ops("RECONFIGURE_OLD_PRIMARY")
        self.assertNotEqual(still["status"], "DONE", still)
        self.assertNotIn("masterInstanceName", self.get("west")[1])
        self.emu.call("POST", "/emu/outage", {"project": P, "name": "west", "down": False})
        done, _ = self.wait(old)
        self.assertNotIn("error", done)
        self.assertEqual(self.get("west")[1]["masterInstanceName"], "east")

    def test_a_failed_reconfiguration_leaves_the_old_primary_as_it_was(self):
        self.emu.call("POST", "/emu/fail", {"project": P, "name": "west",
                                            "operationType": "RECONFIGURE_OLD_PRIMARY",
                                            "message": "old primary unreachable"})
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica?failover=true")
        self.wait(op)
        (old,) = wait_until("west's RECONFIGURE_OLD_PRIMARY",
                            lambda: self.old_primary_ops("RECONFIGURE_OLD_PRIMARY") or None)
        done, _ = self.wait(old)
        self.assertEqual(done["error"]["errors"][0]["message"], "old primary unreachable")
        self.assertNotIn("masterInstanceName", self.get("west")[1])

    def test_a_plain_promotion_reconfigures_and_leaves_a_primary(self):
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.wait(op)
        (old,) = wait_until("west's RECONFIGURE_OLD_PRIMARY",
                            lambda: self.old_primary_ops("RECONFIGURE_OLD_PRIMARY") or None)
        self.wait(old)
        west = self.get("west")[1]
        self.assertEqual(west["instanceType"], "CLOUD_SQL_INSTANCE")
        self.assertNotIn("masterInstanceName", west)

    def test_a_switchover_runs_its_part_on_the_old_primary(self):
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/switchover")
        (old,) = self.old_primary_ops("SWITCHOVER_TO_REPLICA")
        conforms(self, SQL, {"$ref": "Operation"}, old, "SWITCHOVER_TO_REPLICA")
        self.wait(op)
        done, _ = self.wait(old)
        self.assertNotIn("error", done)

    def test_clone_at_a_point_in_time_within_the_window(self):
        s, rt = self.emu.call("GET", f"/v1/projects/{P}/instances/west/getLatestRecoveryTime")
        self.assertEqual(s, 200, rt)
        conforms(self, SQL, {"$ref": "SqlInstancesGetLatestRecoveryTimeResponse"}, rt, "recovery")
        ctx = {"cloneContext": {"destinationInstanceName": "west-pitr",
                                "pointInTime": rt["latestRecoveryTime"]}}
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/west/clone", ctx)
        self.assertEqual((s, op["operationType"], op["targetId"]), (200, "CLONE", "west-pitr"), op)
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west/clone", ctx)
        self.assertEqual((s, err["error"]["status"]), (409, "ALREADY_EXISTS"))
        self.wait(op)
        self.assertEqual(self.get("west-pitr")[0], 200)
        late = {"cloneContext": {"destinationInstanceName": "x", "pointInTime": "2999-01-01T00:00:00Z"}}
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west/clone", late)
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"))

    def test_a_backup_in_another_location_is_restored_into_a_new_instance_there(self):
        # An on-demand backup kept in us-east4: ENQUEUED, SUCCESSFUL once
        # its operation is DONE; listed newest first, filtered by instance.
        s, op = self.emu.call("POST", f"/v1/projects/{P}/backups",
                              {"instance": "west", "location": "us-east4"})
        self.assertEqual((s, op["operationType"], op["targetId"]), (200, "BACKUP_VOLUME", "west"), op)
        s, listed = self.emu.call("GET", f"/v1/projects/{P}/backups?filter=" +
                                  urllib.parse.quote('instance="west"'))
        self.assertEqual((s, listed["backups"][0]["state"]), (200, "ENQUEUED"), listed)
        name = listed["backups"][0]["name"]
        # Not restorable before it is SUCCESSFUL.
        restore = {"backup": name, "restoreInstanceSettings": {"region": "us-east4"}}
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west-r/restoreBackup", restore)
        self.assertEqual((s, err["error"]["status"]), (400, "FAILED_PRECONDITION"), err)
        self.wait(op)
        s, listed = self.emu.call("GET", f"/v1/projects/{P}/backups")
        b = listed["backups"][0]
        self.assertEqual((b["state"], b["location"], b["instance"]), ("SUCCESSFUL", "us-east4", "west"))
        self.assertIn("endTime", b["backupInterval"])
        s, none = self.emu.call("GET", f"/v1/projects/{P}/backups?filter=" +
                                urllib.parse.quote('instance="nobody"'))
        self.assertEqual((s, none), (200, {}))
        # Restored into a new instance in the settings' region, once: the
        # name is taken at once, and a second restore into it is refused.
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/west-r/restoreBackup", restore)
        self.assertEqual((s, op["operationType"], op["targetId"]), (200, "RESTORE_VOLUME", "west-r"), op)
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west-r/restoreBackup", restore)
        self.assertEqual((s, err["error"]["status"]), (409, "ALREADY_EXISTS"), err)
        self.wait(op)
        s, inst = self.get("west-r")
        self.assertEqual((s, inst["region"], inst["state"]), (200, "us-east4", "RUNNABLE"), inst)
        # A backup of the past (a test's), and a name that is no backup.
        s, old = self.emu.call("POST", "/emu/sql/backups", {"project": P, "instance": "west",
                                                           "location": "us-east4",
                                                           "endTime": "2026-01-01T00:00:00Z"})
        self.assertEqual((s, old["state"], old["backupInterval"]["endTime"][:10]),
                         (200, "SUCCESSFUL", "2026-01-01"), old)
        bad = {"backup": f"projects/{P}/backups/1", "restoreInstanceSettings": {"region": "us-east4"}}
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/x/restoreBackup", bad)
        self.assertEqual((s, err["error"]["status"]), (404, "NOT_FOUND"), err)
        # The reference's other filter form; a label Cloud SQL refuses.
        s, listed = self.emu.call("GET", f"/v1/projects/{P}/backups?filter=" +
                                  urllib.parse.quote("instance:west"))
        self.assertEqual((s, len(listed["backups"])), (200, 2), listed)
        bad = {"backup": name, "restoreInstanceSettings": {"region": "us-east4", "settings": {
            "userLabels": {"drctl:restored-by": "x"}}}}
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/west-l/restoreBackup", bad)
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"), err)
        # A replica keeps no backups.
        s, err = self.emu.call("POST", f"/v1/projects/{P}/backups", {"instance": "east"})
        self.assertEqual((s, err["error"]["status"]), (400, "FAILED_PRECONDITION"), err)

    def test_a_patched_backup_location_keeps_the_next_backups_there(self):
        # The whole configuration is sent (a patch replaces it), location set.
        s, inst = self.get("west")
        config = dict(inst["settings"]["backupConfiguration"], location="us-east4")
        body = {"settings": {"backupConfiguration": config}}
        s, op = self.emu.call("PATCH", f"/v1/projects/{P}/instances/west", body)
        self.assertEqual((s, op["operationType"], op["targetId"]), (200, "UPDATE", "west"), op)
        self.wait(op)
        s, inst = self.get("west")
        kept = inst["settings"]["backupConfiguration"]
        self.assertEqual((kept["location"], kept["pointInTimeRecoveryEnabled"]), ("us-east4", True))
        # An on-demand backup with no location is kept there.
        s, op = self.emu.call("POST", f"/v1/projects/{P}/backups", {"instance": "west"})
        self.wait(op)
        s, listed = self.emu.call("GET", f"/v1/projects/{P}/backups?filter=" +
                                  urllib.parse.quote('instance="west"'))
        self.assertEqual(listed["backups"][0]["location"], "us-east4", listed)
        # A replica keeps no backups; a field Cloud SQL has not is refused;
        # both kinds of patch at once are refused.
        s, err = self.emu.call("PATCH", f"/v1/projects/{P}/instances/east", body)
        self.assertEqual((s, err["error"]["status"]), (400, "FAILED_PRECONDITION"), err)
        bad = {"settings": {"backupConfiguration": {"location": "us", "colour": "red"}}}
        s, err = self.emu.call("PATCH", f"/v1/projects/{P}/instances/west", bad)
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"), err)
        both = dict(body, replicationCluster={"failoverDrReplicaName": "east"})
        s, err = self.emu.call("PATCH", f"/v1/projects/{P}/instances/west", both)
        self.assertEqual(s, 400, err)

    def test_a_replica_is_not_cloned_and_a_clone_is_deleted_through_an_operation(self):
        s, err = self.emu.call("POST", f"/v1/projects/{P}/instances/east/clone",
                               {"cloneContext": {"destinationInstanceName": "east-c"}})
        self.assertEqual((s, err["error"]["status"]), (400, "FAILED_PRECONDITION"), err)
        self.assertEqual(self.get("east-c")[0], 404)
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/west/clone",
                              {"cloneContext": {"destinationInstanceName": "west-d"}})
        self.wait(op)
        self.op_seconds(HOLD)  # the delete runs until the test lets it end
        s, op = self.emu.call("DELETE", f"/v1/projects/{P}/instances/west-d")
        self.assertEqual((s, op["operationType"], op["targetId"]), (200, "DELETE", "west-d"), op)
        conforms(self, SQL, {"$ref": "Operation"}, op, "delete")
        # A second delete while the first runs is refused, as Cloud SQL does.
        s, err = self.emu.call("DELETE", f"/v1/projects/{P}/instances/west-d")
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        self.assertEqual(self.get("west-d")[0], 200)
        self.op_seconds(OP_SECONDS)
        self.wait(op)
        self.assertEqual(self.get("west-d")[0], 404)
        s, err = self.emu.call("DELETE", f"/v1/projects/{P}/instances/west-d")
        self.assertEqual((s, err["error"]["status"]), (404, "NOT_FOUND"), err)
        # A replica deleted leaves its primary's replica list.
        s, op = self.emu.call("DELETE", f"/v1/projects/{P}/instances/east")
        self.wait(op)
        self.assertNotIn("east", self.get("west")[1].get("replicaNames", []))

    def test_operations_list_names_the_instances_operations(self):
        self.op_seconds(HOLD)  # west's own operation starts once east's is DONE
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        s, ops = self.emu.call("GET", f"/v1/projects/{P}/operations?instance=east")
        self.assertEqual([o["name"] for o in ops["items"]], [op["name"]])
        conforms(self, SQL, {"$ref": "OperationsListResponse"}, ops, "operations.list")
        s, ops = self.emu.call("GET", f"/v1/projects/{P}/operations?instance=west")
        self.assertNotIn("items", ops)

    def test_operations_list_pages_newest_first(self):
        _, first = self.emu.call("POST", f"/v1/projects/{P}/instances/east/promoteReplica")
        self.wait(first)
        _, second = self.emu.call("DELETE", f"/v1/projects/{P}/instances/east")
        self.wait(second)
        s, page = self.emu.call("GET", f"/v1/projects/{P}/operations?instance=east&maxResults=1")
        self.assertEqual([o["name"] for o in page["items"]], [second["name"]])
        s, rest = self.emu.call(
            "GET", f"/v1/projects/{P}/operations?instance=east&maxResults=1&pageToken={page['nextPageToken']}")
        self.assertEqual([o["name"] for o in rest["items"]], [first["name"]])
        self.assertNotIn("nextPageToken", rest)

    def test_replica_lag_is_a_gauge_of_replicas_only(self):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))
        flt = ('metric.type = "cloudsql.googleapis.com/database/replication/replica_lag" AND '
               f'resource.labels.database_id = "{P}:east"')
        q = urllib.parse.urlencode({"filter": flt, "interval.startTime": start, "interval.endTime": now})
        s, ts = self.emu.call("GET", f"/v3/projects/{P}/timeSeries?{q}")
        self.assertEqual(s, 200, ts)
        conforms(self, MON, {"$ref": "ListTimeSeriesResponse"}, ts, "timeSeries.list")
        (series,) = ts["timeSeries"]
        self.assertEqual(series["resource"]["labels"]["database_id"], f"{P}:east")
        self.assertEqual(series["points"][0]["value"]["doubleValue"], 3.5)
        # The primary publishes none: nothing, never a zero.
        q = q.replace("east", "west")
        self.assertEqual(self.emu.call("GET", f"/v3/projects/{P}/timeSeries?{q}"), (200, {}))

    def test_network_lag_is_its_own_metric_published_only_where_set(self):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))
        flt = ('metric.type = "cloudsql.googleapis.com/database/replication/network_lag" AND '
               f'resource.labels.database_id = "{P}:east"')
        q = urllib.parse.urlencode({"filter": flt, "interval.startTime": start, "interval.endTime": now})
        # Never set: none published (an engine that does not report it).
        self.assertEqual(self.emu.call("GET", f"/v3/projects/{P}/timeSeries?{q}"), (200, {}))
        s, _ = self.emu.call("POST", "/emu/lag", {"project": P, "name": "east", "seconds": 90,
                                                  "metric": "network_lag", "ago": 5})
        self.assertEqual(s, 200)
        s, ts = self.emu.call("GET", f"/v3/projects/{P}/timeSeries?{q}")
        self.assertEqual(s, 200, ts)
        conforms(self, MON, {"$ref": "ListTimeSeriesResponse"}, ts, "timeSeries.list")
        (series,) = ts["timeSeries"]
        self.assertEqual(series["metric"]["type"],
                         "cloudsql.googleapis.com/database/replication/network_lag")
        self.assertEqual(series["points"][0]["value"]["doubleValue"], 90)
        # replica_lag is untouched by it.
        q2 = q.replace("network_lag", "replica_lag")
        _, ts = self.emu.call("GET", f"/v3/projects/{P}/timeSeries?{q2}")
        self.assertEqual(ts["timeSeries"][0]["points"][0]["value"]["doubleValue"], 3.5)

    def test_errors_are_googles(self):
        s, err = self.get("nope")
        self.assertEqual(s, 404)
        (_, _, status, want) = next(r for r in recorded("sql-clone_http.log") if r[2] == 404)
        self.assertEqual(status, 404)
        same_shape(self, want, err, "404", ["error.code", "error.message", "error.errors[].reason",
                                            "error.errors[].domain", "error.errors[].message"])
        self.assertEqual(err["error"]["errors"][0]["reason"], want["error"]["errors"][0]["reason"])
        self.assertEqual(err["error"]["status"], "NOT_FOUND")

    # ------------------------------------------------------------ contract
    def test_instances_have_the_recorded_shape(self):
        log = recorded("sql-switchover_http.log")
        gets = [r for r in log if r[0] == "GET" and "/instances/" in r[1] and r[2] == 200]
        primary = next(b for *_, b in gets if b["instanceType"] == "CLOUD_SQL_INSTANCE")
        replica = next(b for *_, b in gets if b["instanceType"] == "READ_REPLICA_INSTANCE")
        _, west = self.get("west")
        _, east = self.get("east")
        same_shape(self, primary, west, "primary", INSTANCE_FIELDS)
        same_shape(self, replica, east, "replica", INSTANCE_FIELDS + ["masterInstanceName"])
        for name, inst in (("west", west), ("east", east)):
            conforms(self, SQL, {"$ref": "DatabaseInstance"}, inst, name)
        _, listed = self.emu.call("GET", f"/v1/projects/{P}/instances")
        conforms(self, SQL, {"$ref": "InstancesListResponse"}, listed, "instances.list")

    def test_operations_have_the_recorded_shape(self):
        log = recorded("sql-switchover_http.log")
        posted = next(b for m, p, s, b in log if m == "POST" and p.endswith("/switchover"))
        done = next(b for m, p, s, b in log if "/operations/" in p and b["operationType"] == "SWITCHOVER")
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/switchover")
        same_shape(self, posted, op, "switchover", OP_FIELDS)
        self.assertEqual((op["status"], op["operationType"]), (posted["status"], posted["operationType"]))
        finished, _ = self.wait(op)
        same_shape(self, done, finished, "switchover done", OP_FIELDS + ["startTime", "endTime"])
        conforms(self, SQL, {"$ref": "Operation"}, finished, "operation")
        clone_log = recorded("sql-clone_http.log")
        cloned = next(b for m, p, s, b in clone_log if m == "POST" and p.endswith("/clone"))
        # After the switchover west is the replica (which is not cloned):
        # east, the primary now, is.
        _, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/clone",
                              {"cloneContext": {"destinationInstanceName": "east-c"}})
        same_shape(self, cloned, op, "clone", OP_FIELDS)
        self.assertEqual(op["operationType"], cloned["operationType"])

    def test_the_paths_are_the_apis(self):
        for method in ("instances.get", "instances.promoteReplica", "instances.switchover",
                       "instances.clone", "projects.instances.getLatestRecoveryTime",
                       "operations.get", "operations.list"):
            self.assertTrue(SQL["methods"][method]["flatPath"].startswith("v1/projects/{project}/"))
        self.assertIn("failover", SQL["methods"]["instances.promoteReplica"]["parameters"])
        self.assertEqual(MON["methods"]["projects.timeSeries.list"]["flatPath"],
                         "v3/projects/{projectsId}/timeSeries")


if __name__ == "__main__":
    _wait.main()
