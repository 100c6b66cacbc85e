"""Tests of the Cloud Run part of the GCP emulator (localstack/gcp_emu_run.py)
with a client that is not drctl's (urllib, through test_gcp_emu's helpers).

* behaviour: a revision min-instances patch creates a revision that serves
  only when its operation is done; an armed failure leaves the old revision
  serving and names the new one; a service-level floor patch
  (`scaling.minInstanceCount`) makes no revision but reconciles the same
  way, and can fail the same way; labels are set, replaced, cleared and
  checked as Google Cloud's, at once (an operation already done), also
  while a floor rolls out; a patch needs a mask and a matching etag; Cloud
  Run's errors.
* contract: the service (with labels), the patch's operation and the
  finished operation have the shape of real Cloud Run v2 answers recorded
  on Google Cloud (localstack/contract/run-service_http.log: exchanges 1,
  4, 5 and 6 of Config Connector's pkg/test/resourcefixture/testdata/basic/
  run/v1beta1/runservice/runservicebasic/_http.log, GoogleCloudPlatform/
  k8s-config-connector at 0d5edf1f).

Run: python3 localstack/test_gcp_emu_run.py (its own emulator, stopped after).
"""
import unittest

import _wait
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
FLOOR_MASK = "?updateMask=scaling.minInstanceCount"  # the service-level floor
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

    def patch_floor(self, n, etag=None, mask=FLOOR_MASK):
        """A patch of the service-level floor (`scaling.minInstanceCount`)."""
        body = {"scaling": {"minInstanceCount": n}}
        if etag:
            body["etag"] = etag
        return self.emu.call("PATCH", f"{BASE}/services/api{mask}", body)

    def patch_labels(self, labels, etag=None, mask="?updateMask=labels"):
        body = {} if labels is None else {"labels": labels}
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

    # ----------------------------------------------- service-level floor
    def test_seeding_puts_the_floor_at_the_service_level(self):
        plain = self.get()
        self.assertNotIn("scaling", plain)  # no floor: the whole object left out
        self.assertNotIn("labels", plain)  # proto3: an empty map left out
        s, svc = self.emu.call("POST", "/emu/run/services",
                               {"project": P, "location": L, "name": "both",
                                "minInstanceCount": 2, "revisionMinInstanceCount": 1,
                                "maxInstanceCount": 10, "labels": {"team": "orders"}})
        self.assertEqual(s, 200, svc)
        self.assertEqual(svc["scaling"], {"minInstanceCount": 2})
        self.assertEqual(svc["template"]["scaling"], {"minInstanceCount": 1, "maxInstanceCount": 10})
        self.assertEqual(svc["labels"], {"team": "orders"})
        s, err = self.emu.call("POST", "/emu/run/services",
                               {"project": P, "location": L, "name": "bad", "labels": {"Team": "x"}})
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"), err)

    def test_a_service_level_floor_patch_makes_no_revision_and_reconciles(self):
        rev = self.seeded["latestReadyRevision"]
        self.rollout_seconds(HOLD)  # reconciling until the test lets it end
        s, op = self.patch_floor(2, etag=self.seeded["etag"])
        self.assertEqual(s, 200, op)
        self.assertNotIn("done", op)
        self.assertEqual(op["metadata"]["scaling"], {"minInstanceCount": 2})
        svc = self.get()
        self.assertEqual(svc["scaling"], {"minInstanceCount": 2})
        self.assertNotIn("minInstanceCount", svc["template"]["scaling"])  # the revision's untouched
        self.assertEqual((svc["latestCreatedRevision"], svc["latestReadyRevision"]), (rev, rev))
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("2", "1"))  # int64: strings
        self.assertTrue(svc["reconciling"])
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_RECONCILING")
        self.assertNotEqual(svc["etag"], self.seeded["etag"])
        # Another floor patch while this one rolls out is refused, as a revision's.
        s, err = self.patch_floor(3)
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        self.rollout_seconds(ROLLOUT_SECONDS)
        done = self.wait(op)
        self.assertNotIn("error", done)
        svc = self.get()
        self.assertEqual((svc["latestCreatedRevision"], svc["latestReadyRevision"]), (rev, rev))
        self.assertEqual((svc["generation"], svc["observedGeneration"], svc["reconciling"]),
                         ("2", "2", False))
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_SUCCEEDED")
        self.assertEqual(done["response"]["scaling"], {"minInstanceCount": 2})
        # Back to 0: proto3 JSON leaves out the zero, the emulator the object.
        _, op = self.patch_floor(0, mask="?updateMask=Scaling.Min_Instance_Count")
        self.wait(op)
        svc = self.get()
        self.assertNotIn("scaling", svc)
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("3", "3"))
        self.assertEqual(svc["latestCreatedRevision"], rev)

    def test_a_floor_patch_is_checked_and_may_carry_a_template_part(self):
        s, err = self.patch_floor(-1)
        self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"), err)
        self.assertIn("scaling.minInstanceCount", err["error"]["message"])
        s, err = self.patch_floor("two")
        self.assertEqual(s, 400, err)
        s, err = self.patch_floor(2, etag="stale")
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        svc = self.get()
        self.assertNotIn("scaling", svc)
        self.assertEqual(svc["generation"], "1")
        # Both levels in one patch: one generation, the template part a revision.
        s, op = self.emu.call("PATCH", f"{BASE}/services/api?updateMask=scaling.min_instance_count,"
                                       "template.scaling.minInstanceCount",
                              {"scaling": {"minInstanceCount": 2},
                               "template": {"scaling": {"minInstanceCount": 1}}})
        self.assertEqual(s, 200, op)
        self.wait(op)
        svc = self.get()
        self.assertEqual((svc["scaling"], svc["template"]["scaling"]["minInstanceCount"]),
                         ({"minInstanceCount": 2}, 1))
        self.assertIn("/revisions/api-00002-", svc["latestReadyRevision"])
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("2", "2"))

    def test_an_armed_failure_fails_a_service_level_floor_change(self):
        rev = self.seeded["latestReadyRevision"]
        self.emu.call("POST", "/emu/run/fail", {"project": P, "location": L, "name": "api",
                                                "message": "Quota exceeded for instances."})
        _, op = self.patch_floor(3)
        done = self.wait(op)
        self.assertEqual(done["error"]["code"], 9)
        self.assertIn("Quota exceeded for instances.", done["error"]["message"])
        self.assertNotIn("response", done)
        svc = self.get()
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_FAILED")
        self.assertIn("Quota exceeded for instances.", svc["terminalCondition"]["message"])
        self.assertEqual(svc["scaling"], {"minInstanceCount": 3})  # the spec stays as written
        self.assertEqual((svc["latestCreatedRevision"], svc["latestReadyRevision"]), (rev, rev))
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("2", "2"))
        # The failure was for that change only.
        _, op = self.patch_floor(3)
        self.assertNotIn("error", self.wait(op))
        self.assertEqual(self.get()["terminalCondition"]["state"], "CONDITION_SUCCEEDED")

    # ------------------------------------------------------------ labels
    def test_labels_are_set_replaced_and_cleared_at_once(self):
        rev = self.seeded["latestReadyRevision"]
        marks = {"drctl-drill-run": "r-20240401-1", "drctl-drill-role": "standby"}
        s, op = self.patch_labels(marks, etag=self.seeded["etag"])
        self.assertEqual(s, 200, op)
        self.assertIs(op["done"], True)  # metadata: nothing rolls out
        self.assertRegex(op["name"], rf"^projects/{P}/locations/{L}/operations/[^/]+$")
        self.assertEqual(op["response"]["labels"], marks)
        self.assertEqual(op["response"]["@type"], "type.googleapis.com/google.cloud.run.v2.Service")
        svc = self.get()
        self.assertEqual(svc["labels"], marks)
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("2", "2"))
        self.assertNotIn("reconciling", svc)  # never reconciled
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_SUCCEEDED")
        self.assertEqual((svc["latestCreatedRevision"], svc["latestReadyRevision"]), (rev, rev))
        self.assertNotEqual(svc["etag"], self.seeded["etag"])
        # The operation can be read back, done.
        name = op["name"].rsplit("/", 1)[-1]
        s, again = self.emu.call("GET", f"{BASE}/operations/{name}")
        self.assertEqual((s, again["done"], again["response"]["labels"]), (200, True, marks))
        # The whole map is replaced (an empty value is a value).
        _, op = self.patch_labels({"team": ""}, mask="?updateMask=LABELS")
        self.assertEqual(self.get()["labels"], {"team": ""})
        # Absent or empty labels clear it: left out, as proto3 JSON does.
        for body_labels in (None, {}):
            self.patch_labels({"x": "y"})
            s, op = self.patch_labels(body_labels)
            self.assertEqual(s, 200, op)
            self.assertNotIn("labels", op["response"])
            self.assertNotIn("labels", self.get())
        self.assertEqual(self.get()["generation"], "7")

    def test_bad_labels_are_refused_naming_them(self):
        bad = [({"Team": "x"}, "Team"), ({"1team": "x"}, "1team"), ({"": "x"}, "''"),
               ({"k" * 64: "x"}, "k" * 64), ({"team.name": "x"}, "team.name"),
               ({"team": "Orders"}, "Orders"), ({"team": "a.b"}, "a.b"),
               ({"team": "v" * 64}, "v" * 64), ({"team": 3}, "3"),
               ({"drctl/drill": "x"}, "drctl/drill"),
               ({f"k{i}": "" for i in range(65)}, "65")]
        for labels, named in bad:
            s, err = self.patch_labels(labels)
            self.assertEqual((s, err["error"]["status"]), (400, "INVALID_ARGUMENT"), (labels, err))
            self.assertIn(named, err["error"]["message"], labels)
        s, err = self.patch_labels(["team"])
        self.assertEqual(s, 400, err)
        svc = self.get()
        self.assertNotIn("labels", svc)
        self.assertEqual((svc["generation"], svc["etag"]), ("1", self.seeded["etag"]))
        # At the limits: 64 labels, a 63-character key and value, an empty value.
        most = {f"k{i}": "" for i in range(63)} | {"k" * 63: "v_-0" + "v" * 59}
        s, op = self.patch_labels(most)
        self.assertEqual(s, 200, op)
        self.assertEqual(len(self.get()["labels"]), 64)

    def test_a_labels_patch_needs_the_current_etag(self):
        s, err = self.patch_labels({"a": "b"}, etag="stale")
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        s, _ = self.patch_labels({"a": "b"}, etag=self.seeded["etag"])
        self.assertEqual(s, 200)
        # The etag changed with it: the seeded one is stale now.
        s, err = self.patch_labels({"a": "c"}, etag=self.seeded["etag"])
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        s, err = self.patch_floor(2, etag=self.seeded["etag"])
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        self.assertEqual(self.get()["labels"], {"a": "b"})

    def test_a_labels_patch_is_taken_while_a_floor_rolls_out(self):
        self.rollout_seconds(HOLD)
        _, op = self.patch_floor(2, etag=self.seeded["etag"])  # drctl marks, then raises...
        during = self.get()
        s, mark = self.patch_labels({"drctl-drill-run": "r-1"}, etag=during["etag"])  # ...or marks again
        self.assertEqual(s, 200, mark)
        self.assertIs(mark["done"], True)
        svc = self.get()
        self.assertEqual(svc["labels"], {"drctl-drill-run": "r-1"})
        self.assertTrue(svc["reconciling"])  # the rollout goes on
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_RECONCILING")
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("3", "1"))
        self.assertNotEqual(svc["etag"], during["etag"])
        # A rollout path is still refused meanwhile, also beside labels.
        s, err = self.emu.call("PATCH", f"{BASE}/services/api?updateMask=labels,scaling.minInstanceCount",
                               {"labels": {}, "scaling": {"minInstanceCount": 1}})
        self.assertEqual((s, err["error"]["status"]), (409, "ABORTED"), err)
        self.assertIn("is being reconciled", err["error"]["message"])
        self.rollout_seconds(ROLLOUT_SECONDS)
        done = self.wait(op)
        self.assertNotIn("error", done)
        svc = self.get()
        self.assertEqual((svc["generation"], svc["observedGeneration"]), ("3", "3"))
        self.assertEqual((svc["scaling"], svc["labels"]), ({"minInstanceCount": 2}, {"drctl-drill-run": "r-1"}))
        self.assertEqual(svc["terminalCondition"]["state"], "CONDITION_SUCCEEDED")

    def test_a_labels_patch_does_not_take_an_armed_failure(self):
        self.emu.call("POST", "/emu/run/fail", {"project": P, "location": L, "name": "api"})
        self.patch_labels({"a": "b"})
        _, op = self.patch_floor(1)
        self.assertEqual(self.wait(op)["error"]["code"], 9)

    # ------------------------------------------------------------ contract
    def test_a_service_has_the_recorded_shape(self):
        want = next(b for m, p, s, b in recorded("run-service_http.log")
                    if m == "GET" and "/services/" in p and s == 200)
        same_shape(self, want, self.get(), "service", SERVICE_FIELDS)
        # Labels, as the recorded service carries them (a map of strings).
        self.patch_labels({"drctl-drill-run": "r-1", "team": "orders"})
        got = self.get()
        same_shape(self, want, got, "labelled service", ["labels"])
        self.assertEqual({type(v) for v in want["labels"].values()}, {str})
        self.assertEqual(got["labels"], {"drctl-drill-run": "r-1", "team": "orders"})

    def test_a_labels_patch_answers_a_finished_operation_of_the_recorded_shape(self):
        done = next(b for m, p, s, b in recorded("run-service_http.log") if "/operations/" in p)
        _, op = self.patch_labels({"drctl-drill-run": "r-1"})
        same_shape(self, done, op, "labels patch", ["name", "done", "metadata.@type", "metadata.labels",
                                                    "response.@type", "response.name",
                                                    "response.generation", "response.labels",
                                                    "response.terminalCondition.state"])

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
    _wait.main()
