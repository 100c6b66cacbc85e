"""Tests of the Compute part of the GCP emulator (localstack/gcp_emu_compute.py)
with a client that is not drctl's (urllib).

* behaviour: a resize's operation is DONE when the resize is scheduled, the
  instances run later (CREATING, VERIFYING, NONE/RUNNING) and the group is
  stable only then; a requestId seen before answers the same operation; an
  autoscaler's minimum raises its group; instances that cannot be created
  stay CREATING with their errors; Compute's errors;
* contract: the group, the regional operation and the error have the shape
  recorded on Google Cloud (localstack/contract/compute-rigm_http.log, from
  Config Connector's mockgcp golden logs).

Run: python3 localstack/test_gcp_emu_compute.py. It starts its own emulator on
a free port and stops it.
"""
import json
import os
import unittest

import _wait
from _wait import wait_until
from test_gcp_emu import HOLD, LONG, Emu, same_shape, type_of

HERE = os.path.dirname(os.path.abspath(__file__))
P, R = "emu-test", "us-east4"
OP_SECONDS, VM_SECONDS = 0.2, 0.8  # the tests' durations (set in setUp)
BASE = f"/compute/v1/projects/{P}/regions/{R}"
GROUP_FIELDS = ["kind", "id", "name", "region", "selfLink", "baseInstanceName",
                "instanceTemplate", "instanceGroup", "targetSize", "fingerprint",
                "creationTimestamp", "listManagedInstancesResults", "status.isStable",
                "currentActions.creating", "currentActions.none", "currentActions.verifying",
                "currentActions.deleting", "distributionPolicy.targetShape"]
OP_FIELDS = ["kind", "id", "name", "operationType", "status", "progress", "insertTime",
             "region", "selfLink", "targetLink", "user"]


def recorded():
    """(method, path, status, body) of each exchange of the recorded log."""
    with open(os.path.join(HERE, "contract", "compute-rigm_http.log")) as f:
        text = "\n".join(l for l in f.read().split("\n") if not l.startswith("#"))
    out = []
    for block in text.split("\n---\n"):
        lines = block.strip("\n").split("\n")
        method, url = lines[0].split(" ", 1)
        at = next(i for i, l in enumerate(lines) if l[:3].isdigit() and l[3:4] == " ")
        rest = "\n".join(lines[at + 1:])
        body = rest[rest.find("\n\n") + 2:]
        out.append((method, url.split("googleapis.com", 1)[1].split("?")[0],
                    int(lines[at][:3]), json.loads(body)))
    return out


class ComputeEmuTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.call("POST", "/emu/reset", {})
        self.config(opSeconds=OP_SECONDS, vmSeconds=VM_SECONDS)
        self.seed("workers", 0)
        self.seed("scaled", 1, autoscaler={"name": "scaled-as", "min": 1, "max": 8})

    def config(self, **durations):
        """Sets how long operations (opSeconds) and instances' changes
        (vmSeconds) take, also of those under way (test_gcp_emu.HOLD keeps
        them where they are until set back)."""
        s, b = self.emu.call("POST", "/emu/compute/config", durations)
        self.assertEqual(s, 200, b)

    def seed(self, name, size, **kw):
        s, b = self.emu.call("POST", "/emu/compute/groups",
                             dict({"project": P, "region": R, "name": name, "size": size}, **kw))
        self.assertEqual(s, 200, b)
        return b

    def group(self, name):
        s, g = self.emu.call("GET", f"{BASE}/instanceGroupManagers/{name}")
        self.assertEqual(s, 200, g)
        return g

    def instances(self, name):
        s, b = self.emu.call("POST", f"{BASE}/instanceGroupManagers/{name}/listManagedInstances")
        self.assertEqual(s, 200, b)
        return b.get("managedInstances", [])

    def done(self, op):
        """The operation once DONE, and the statuses seen on the way."""
        seen = [op["status"]]

        def final():
            s, got = self.emu.call("GET", f"{BASE}/operations/{op['name']}")
            seen.append(got.get("status") if s == 200 else s)
            return (s, got) if s != 200 or got["status"] == "DONE" else None

        s, done = wait_until(lambda: f"operation {op['name']} to be DONE (seen {seen})", final,
                             interval=0.03)
        self.assertEqual(s, 200, done)
        return done, seen

    def test_a_resize_is_done_when_scheduled_and_the_instances_run_later(self):
        # The resize under way, its instances CREATING, until the test lets them go on.
        self.config(opSeconds=HOLD, vmSeconds=HOLD)
        s, op = self.emu.call("POST", f"{BASE}/instanceGroupManagers/workers/resize?size=3")
        self.assertEqual((s, op["status"], op["operationType"]),
                         (200, "PENDING", "compute.regionInstanceGroupManagers.resize"))
        self.assertEqual(self.group("workers")["targetSize"], 0, "not before DONE")
        self.config(opSeconds=OP_SECONDS)
        op, seen = self.done(op)
        self.assertEqual(op["progress"], 100)
        g = self.group("workers")
        self.assertEqual((g["targetSize"], g["status"]["isStable"]), (3, False))
        self.assertEqual(g["currentActions"]["creating"], 3)
        first = self.instances("workers")
        self.assertEqual([i["currentAction"] for i in first], ["CREATING"] * 3)
        self.assertTrue(all("instanceStatus" not in i for i in first), first)
        # VERIFYING from 60 % of LONG on, for seconds: waited for, then ended.
        self.config(vmSeconds=LONG)
        actions = set()

        def reached(action):
            def check():
                now = self.instances("workers")
                actions.update(i["currentAction"] for i in now)
                return now if all(i["currentAction"] == action for i in now) else None
            return check

        wait_until(lambda: f"workers' instances to be VERIFYING (actions seen {sorted(actions)})",
                   reached("VERIFYING"))
        self.config(vmSeconds=VM_SECONDS)
        now = wait_until(lambda: f"workers' instances to be NONE (actions seen {sorted(actions)})",
                         reached("NONE"), interval=0.03)
        self.assertIn("VERIFYING", actions)
        self.assertEqual({(i["currentAction"], i["instanceStatus"]) for i in now},
                         {("NONE", "RUNNING")})
        g = self.group("workers")
        self.assertTrue(g["status"]["isStable"])
        self.assertEqual(g["currentActions"]["none"], 3)

    def test_a_request_id_seen_before_answers_the_same_operation(self):
        path = f"{BASE}/instanceGroupManagers/workers/resize?size=2&requestId=1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        _, a = self.emu.call("POST", path)
        _, b = self.emu.call("POST", path)
        self.assertEqual(a["name"], b["name"])

    def test_scaling_down_deletes_the_surplus(self):
        self.config(vmSeconds=HOLD)  # DELETING until the test lets it go on
        _, op = self.emu.call("POST", f"{BASE}/instanceGroupManagers/scaled/resize?size=0")
        self.done(op)
        self.assertEqual([i["currentAction"] for i in self.instances("scaled")], ["DELETING"])
        self.config(vmSeconds=VM_SECONDS)
        wait_until("scaled's deleted instance to be gone", lambda: self.instances("scaled") == [])
        self.assertTrue(self.group("scaled")["status"]["isStable"])

    def test_an_autoscalers_minimum_raises_its_group(self):
        g = self.group("scaled")
        self.assertTrue(g["status"]["autoscaler"].endswith(f"/regions/{R}/autoscalers/scaled-as"))
        self.assertNotIn("autoscaler", self.group("workers")["status"])
        s, a = self.emu.call("GET", f"{BASE}/autoscalers/scaled-as")
        self.assertEqual((s, a["autoscalingPolicy"]["minNumReplicas"]), (200, 1))
        s, op = self.emu.call("PATCH", f"{BASE}/autoscalers?autoscaler=scaled-as",
                              {"autoscalingPolicy": {"minNumReplicas": 4}})
        self.assertEqual((s, op["operationType"]), (200, "compute.regionAutoscalers.patch"))
        self.done(op)
        _, a = self.emu.call("GET", f"{BASE}/autoscalers/scaled-as")
        self.assertEqual(a["autoscalingPolicy"]["minNumReplicas"], 4)
        self.assertEqual(a["autoscalingPolicy"]["maxNumReplicas"], 8, "a patch keeps the rest")
        self.assertEqual(self.group("scaled")["targetSize"], 4)
        s, e = self.emu.call("PATCH", f"{BASE}/autoscalers?autoscaler=scaled-as",
                             {"autoscalingPolicy": {"minNumReplicas": 9}})
        self.assertEqual(s, 400, e)
        self.assertIn("minNumReplicas", e["error"]["message"])

    def test_instances_that_cannot_be_created_stay_creating_with_their_errors(self):
        self.emu.call("POST", "/emu/compute/fail", {"project": P, "region": R, "name": "workers"})
        # A control group resized just after: once its instances run, those
        # of workers would have too, had they been created.
        self.seed("control", 0)
        _, op = self.emu.call("POST", f"{BASE}/instanceGroupManagers/workers/resize?size=2")
        _, control = self.emu.call("POST", f"{BASE}/instanceGroupManagers/control/resize?size=2")
        op, _ = self.done(op)
        self.assertNotIn("error", op, "the resize itself succeeds")
        self.done(control)
        wait_until("the control group's instances to run",
                   lambda: self.group("control")["status"]["isStable"])
        self.assertEqual(len(self.instances("workers")), 2)
        for i in self.instances("workers"):
            self.assertEqual(i["currentAction"], "CREATING")
            err = i["lastAttempt"]["errors"]["errors"][0]
            self.assertEqual(err["code"], "ZONE_RESOURCE_POOL_EXHAUSTED")
        self.assertFalse(self.group("workers")["status"]["isStable"])

    def test_errors_are_computes(self):
        s, e = self.emu.call("GET", f"{BASE}/instanceGroupManagers/nope")
        self.assertEqual(s, 404)
        self.assertEqual(e["error"]["errors"][0]["reason"], "notFound")
        s, e = self.emu.call("POST", f"{BASE}/instanceGroupManagers/workers/resize?size=-1")
        self.assertEqual(s, 400, e)
        s, e = self.emu.call("GET", f"{BASE}/operations/operation-0")
        self.assertEqual(s, 404, e)

    # ------------------------------------------------------------ contract
    def test_the_group_has_the_recorded_shape(self):
        want = next(b for m, p, s, b in recorded() if m == "GET" and s == 200
                    and "/instanceGroupManagers/" in p)
        got = self.group("workers")
        same_shape(self, want, got, "group", GROUP_FIELDS)
        self.assertEqual(sorted(got["currentActions"]), sorted(want["currentActions"]))

    def test_operations_have_the_recorded_shape(self):
        log = recorded()
        posted = next(b for m, p, s, b in log if m == "POST")
        finished = next(b for m, p, s, b in log if "/operations/" in p)
        _, op = self.emu.call("POST", f"{BASE}/instanceGroupManagers/workers/resize?size=1")
        same_shape(self, posted, op, "resize", OP_FIELDS)
        op, _ = self.done(op)
        same_shape(self, finished, op, "resize done", OP_FIELDS + ["startTime", "endTime"])
        self.assertEqual(type_of(op["targetId"]), type_of(finished["targetId"]))
        self.assertTrue(op["selfLink"].endswith(f"/regions/{R}/operations/{op['name']}"))

    def test_errors_have_the_recorded_shape(self):
        want = next(b for m, p, s, b in recorded() if s == 404)
        _, got = self.emu.call("GET", f"{BASE}/instanceGroupManagers/nope")
        self.assertEqual(sorted(got["error"]), sorted(want["error"]), "no `status`, as recorded")
        self.assertEqual(sorted(got["error"]["errors"][0]), sorted(want["error"]["errors"][0]))


if __name__ == "__main__":
    _wait.main()
