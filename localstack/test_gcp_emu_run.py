"""Tests of the Cloud Run part of the GCP emulator (localstack/gcp_emu_run.py)
with a client that is not drctl's (urllib, through test_gcp_emu's helpers).

* behaviour: a min-instances patch creates a revision that serves only when
  its operation is done; an armed failure leaves the old revision serving
  and names the new one; a patch needs a mask and a matching etag; Cloud
  Run's errors.
* contract: the service, the patch's operation and the finished operation
  have the shape of real Cloud Run v2 answers recorded on Google Cloud
  (localstack/contract/run-service_http.log: exchanges 1, 4, 5 and 6 of
  Config Connector's pkg/test/resourcefixture/testdata/basic/run/v1beta1/
  runservice/runservicebasic/_http.log, GoogleCloudPlatform/
  k8s-config-connector at 0d5edf1f).

Run: python3 localstack/test_gcp_emu_run.py (its own emulator, stopped after).
"""
import unittest

from _wait import wait_until
from test_gcp_emu import HOLD, Emu, recorded, same_shape

P, L = "emu-test", "us-east4"
BASE = f"/v2/projects/{P}/locations/{L}"
SERVICE_FIELDS = ["name", "uid", "generation", "createTime", "updateTime", "creator", "etag",
                  "ingress", "launchStage", "template.scaling.maxInstanceCount",
                  "template.containers[].image", "terminalCondition.type",
                  "terminalCondition.state", "terminalCondition.lastTransitionTime",
                  "traffic[].type", "traffic[].percent"]
MASK = "?updateMask=template.scaling.minInstanceCount"
ROLLOUT_SECONDS = 0.4  # the tests' rollouts' duration (set in setUp)


class GcpEmuRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.call("POST", "/emu/reset", {})
        self.rollout_seconds(ROLLOUT_SECONDS)
        s, self.seeded = self.emu.call("POST", "/emu/run/services",
                                       {"project": P, "location": L, "name": "api",
                                        "maxInstanceCount": 10})
        self.assertEqual(s, 200, self.seeded)

    def rollout_seconds(self, seconds):
        """Sets how long rollouts take, also those under way
        (test_gcp_emu.HOLD keeps them reconciling until set back)."""
        s, b = self.emu.call("POST", "/emu/run/config", {"rolloutSeconds": seconds})
        self.assertEqual(s, 200, b)

    def get(self):
        s, b = self.emu.call("GET", f"{BASE}/services/api")
        self.assertEqual(s, 200, b)
        return b

    def patch(self, n, etag=None, mask=MASK):
        body = {"template": {"scaling": {"minInstanceCount": n}}}
        if etag:
            body["etag"] = etag
        return self.emu.call("PATCH", f"{BASE}/services/api{mask}", body)

    def wait(self, op):
        """The operation once done."""
        name = op["name"].rsplit("/", 1)[-1]

        def final():
            s, got = self.emu.call("GET", f"{BASE}/operations/{name}")
            return (s, got) if s != 200 or got.get("done") else None

        s, done = wait_until(f"operation {name} to be done", final)
        self.assertEqual(s, 200, done)
        return done

    # ------------------------------------------------------------ behaviour
    def test_a_seeded_service_serves_its_first_revision_with_no_min_instances(self):
        svc = self.get()
        self.assertNotIn("minInstanceCount", svc["template"]["scaling"])  # proto3: 0 left out
        self.assertEqual(svc["latestReadyRevision"], svc["latestCreatedRevision"])
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("1", "1"))
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_SUCCEEDED")

    def test_a_min_instances_patch_serves_its_revision_when_done(self):
        self.rollout_seconds(HOLD)  # reconciling until the test lets it end
        s, op = self.patch(3, etag=self.seeded["etag"])
        self.assertEqual(s, 200, op)
        self.assertNotIn("done", op)
        svc = self.get()
        self.assertEqual(svc["template"]["scaling"]["minInstanceCount"], 3)
        self.assertTrue(svc["reconciling"])
        self.assertEqual(svc["generation"], "2")
        self.assertEqual(svc["observedGeneration"], "1")
        self.assertNotEqual(svc["latestCreatedRevision"], svc["latestReadyRevision"])
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_RECONCILING")
        # A second patch while the first rolls out is refused.
        s, err = self.patch(4)
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"))
        self.rollout_seconds(ROLLOUT_SECONDS)
        done = self.wait(op)
        self.assertNotIn("error", done)
        svc = self.get()
        self.assertEqual(svc["latestReadyRevision"], svc["latestCreatedRevision"])
        self.assertTrue(svc["latestCreatedRevision"].endswith(
            svc["latestCreatedRevision"].rsplit("/", 1)[-1]))
        self.assertIn("/revisions/api-00002-", svc["latestCreatedRevision"])
        self.assertEqual((svc["observedGeneration"], svc["reconciling"]), ("2", False))
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_SUCCEEDED")
        self.assertEqual(done["response"]["latestReadyRevision"], svc["latestReadyRevision"])

    def test_a_failed_rollout_keeps_the_old_revision_and_names_the_new(self):
        old = self.get()["latestReadyRevision"]
        self.emu.call("POST", "/emu/run/fail", {"project": P, "location": L, "name": "api",
                                                "message": "Container failed to start."})
        _, op = self.patch(2)
        done = self.wait(op)
        svc = self.get()
        rev = svc["latestCreatedRevision"].rsplit("/", 1)[-1]
        self.assertEqual(done["error"]["code"], 9)
        self.assertIn(rev, done["error"]["message"])
        self.assertEqual(svc["latestReadyRevision"], old)
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_FAILED")
        self.assertIn("Container failed to start.", svc["terminalCondition"]["message"])
        self.assertIn(rev, svc["terminalCondition"]["message"])

    def test_a_patch_needs_a_mask_and_the_current_etag(self):
        s, err = self.patch(2, mask="")
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"))
        s, err = self.patch(2, mask="?updateMask=template.containers")
        self.assertEqual(s, 400, err)
        s, err = self.patch(2, etag="stale")
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"))
        self.assertNotIn("minInstanceCount", self.get()["template"]["scaling"])
        # The crate's snake_case mask is taken too.
        s, op = self.patch(2, mask="?updateMask=template.scaling.min_instance_count")
        self.assertEqual(s, 200, op)

    def test_errors_are_cloud_runs(self):
        want = next(b for m, p, s, b in recorded("run-service_http.log") if s == 404)
        s, err = self.emu.call("GET", f"{BASE}/services/nope")
        self.assertEqual(s, 404)
        self.assertEqual(sorted(err["error"]), sorted(want["error"]))
        self.assertEqual(err["error"]["status"], "NOT_FOUND")
        self.assertRegex(err["error"]["message"], r'^service "projects/.+/services/nope" not found$')
        s, err = self.emu.call("GET", f"{BASE}/operations/nope")
        self.assertEqual((s, err["error"]["status"]), (404, "NOT_FOUND"))

    # ------------------------------------------------------------ contract
    def test_a_service_has_the_recorded_shape(self):
        want = next(b for m, p, s, b in recorded("run-service_http.log")
                    if m == "GET" and "/services/" in p and s == 200)
        same_shape(self, want, self.get(), "service", SERVICE_FIELDS)

    def test_the_patch_and_its_operation_have_the_recorded_shape(self):
        log = recorded("run-service_http.log")
        posted = next(b for m, p, s, b in log if m == "PATCH")
        done = next(b for m, p, s, b in log if "/operations/" in p)
        _, op = self.patch(1)
        same_shape(self, posted, op, "patch", ["name", "metadata.@type", "metadata.name",
                                               "metadata.generation"])
        self.assertRegex(op["name"], rf"^projects/{P}/locations/{L}/operations/[^/]+$")
        finished = self.wait(op)
        same_shape(self, done, finished, "done", ["name", "done", "metadata.@type",
                                                  "response.@type", "response.name",
                                                  "response.terminalCondition.state"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
