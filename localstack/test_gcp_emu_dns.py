"""Tests of the Cloud DNS part of the GCP emulator (localstack/gcp_emu_dns.py)
with a client that is not drctl's (urllib, through test_gcp_emu's helpers).

* behaviour: an armed writer (/emu/dns/race) moves the record right before
  the next change; a change is atomic (a deletion that does not match the record
  set exactly is 412 conditionNotMet, FAILED_PRECONDITION, and nothing
  changes); an addition that exists is 409 alreadyExists; the record sets
  change at once and the change is `pending`, then `done`; list filters by
  name and type; zones get and list; unknown zones are 404.
* contract: the zone, the record-set lists and the changes have the shape of
  real Cloud DNS answers recorded on Google Cloud
  (localstack/contract/dns-recordset_http.log: Config Connector's
  pkg/test/resourcefixture/testdata/basic/dns/v1beta1/dnsrecordset/
  dnsrecordset/_http.log, GoogleCloudPlatform/k8s-config-connector at
  85559334), and use only the fields the Cloud DNS v1 discovery document
  declares (localstack/contract/dns.v1.discovery.json, a subset).

Run: python3 localstack/test_gcp_emu_dns.py (its own emulator, stopped after).
"""
import unittest

import _wait
from _wait import wait_until
from test_gcp_emu import HOLD, Emu, conforms, discovery, recorded, same_shape

P, Z = "emu-test", "orders-zone"
BASE = f"/dns/v1/projects/{P}/managedZones/{Z}"
NAME = "orders.gcp.example.com."
DOC = discovery("dns.v1.discovery.json")
CHANGE_SECONDS = 0.4  # how long the tests' changes are pending (set in setUp)


def rrset(value, ttl=60, rtype="CNAME"):
    return {"name": NAME, "type": rtype, "ttl": ttl, "rrdatas": [value]}


class GcpEmuDnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.call("POST", "/emu/reset", {})
        self.change_seconds(CHANGE_SECONDS)
        s, b = self.emu.call("POST", "/emu/dns/zones",
                             {"project": P, "name": Z, "dnsName": "gcp.example.com."})
        self.assertEqual(s, 200, b)
        s, b = self.emu.call("POST", "/emu/dns/records",
                             dict(rrset("api-usc1.example.com."), project=P, zone=Z))
        self.assertEqual(s, 200, b)

    def change_seconds(self, seconds):
        """Sets how long changes are pending, also those made before
        (test_gcp_emu.HOLD keeps them pending until set back)."""
        s, b = self.emu.call("POST", "/emu/dns/config", {"changeSeconds": seconds})
        self.assertEqual(s, 200, b)

    def read(self, name=NAME, rtype="CNAME"):
        s, b = self.emu.call("GET", f"{BASE}/rrsets?name={name}&type={rtype}&$alt=json")
        self.assertEqual(s, 200, b)
        return b.get("rrsets", [])

    def change(self, additions=(), deletions=()):
        body = {}
        if additions:
            body["additions"] = list(additions)
        if deletions:
            body["deletions"] = list(deletions)
        return self.emu.call("POST", f"{BASE}/changes", body)

    def test_a_swap_lands_at_once_and_its_change_is_pending_then_done(self):
        [have] = self.read()
        self.change_seconds(HOLD)  # pending until the test lets it be done
        s, c = self.change([rrset("api-use4.example.com.")], [have])
        self.assertEqual(s, 200, c)
        self.assertEqual(c["status"], "pending")
        self.assertEqual([r["rrdatas"] for r in self.read()], [["api-use4.example.com."]])
        self.change_seconds(CHANGE_SECONDS)

        def final():
            s, got = self.emu.call("GET", f"{BASE}/changes/{c['id']}")
            return (s, got) if s != 200 or got["status"] == "done" else None

        s, got = wait_until(f"change {c['id']} to be done", final)
        self.assertEqual(s, 200, got)
        self.assertEqual(got["status"], "done")
        s, log = self.emu.call("GET", f"{BASE}/changes")
        self.assertEqual([x["id"] for x in log["changes"]], [c["id"]])
        [now] = self.read()
        self.change_seconds(HOLD)
        s, c2 = self.change([rrset("api-usc1.example.com.")], [now])
        s, log = self.emu.call("GET", f"{BASE}/changes?sortOrder=descending&maxResults=1")
        self.assertEqual([(x["id"], x["status"]) for x in log["changes"]], [(c2["id"], "pending")])

    def test_a_deletion_that_does_not_match_exactly_is_refused_and_nothing_changes(self):
        for stale in (rrset("api-other.example.com."), rrset("api-usc1.example.com.", ttl=300),
                      rrset("x.example.com.", rtype="A")):
            s, e = self.change([rrset("api-use4.example.com.")], [stale])
            self.assertEqual(s, 412, e)
            self.assertEqual(e["error"]["status"], "FAILED_PRECONDITION")
            self.assertEqual(e["error"]["errors"][0]["reason"], "conditionNotMet")
        self.assertEqual([r["rrdatas"] for r in self.read()], [["api-usc1.example.com."]])
        s, log = self.emu.call("GET", f"{BASE}/changes")
        self.assertEqual(log["changes"], [])

    def test_an_armed_writer_moves_the_record_right_before_the_next_change(self):
        [have] = self.read()
        s, b = self.emu.call("POST", "/emu/dns/race",
                             dict(rrset("someone-else.example.com."), project=P, zone=Z))
        self.assertEqual(s, 200, b)
        self.assertEqual(self.read(), [have])
        s, e = self.change([rrset("api-use4.example.com.")], [have])
        self.assertEqual((s, e["error"]["status"]), (412, "FAILED_PRECONDITION"))
        self.assertEqual([r["rrdatas"] for r in self.read()], [["someone-else.example.com."]])
        # Spent: the next change built on a fresh read lands.
        [now] = self.read()
        s, c = self.change([rrset("api-use4.example.com.")], [now])
        self.assertEqual(s, 200, c)

    def test_an_addition_that_exists_is_409_already_exists(self):
        s, e = self.change([rrset("api-use4.example.com.")])
        self.assertEqual(s, 409, e)
        self.assertEqual(e["error"]["status"], "ALREADY_EXISTS")
        self.assertEqual(e["error"]["errors"][0]["reason"], "alreadyExists")

    def test_lists_filter_by_name_and_type_and_zones_read(self):
        self.assertEqual(self.read(rtype="A"), [])
        self.assertEqual(self.read(name="other.gcp.example.com."), [])
        s, e = self.emu.call("GET", f"{BASE}/rrsets?type=A")
        self.assertEqual(s, 400, e)
        s, z = self.emu.call("GET", BASE)
        self.assertEqual((s, z["dnsName"]), (200, "gcp.example.com."))
        s, zs = self.emu.call("GET", f"/dns/v1/projects/{P}/managedZones")
        self.assertEqual([x["name"] for x in zs["managedZones"]], [Z])
        s, e = self.emu.call("GET", f"/dns/v1/projects/{P}/managedZones/nope/rrsets")
        self.assertEqual((s, e["error"]["status"]), (404, "NOT_FOUND"))
        s, e = self.emu.call("GET", f"{BASE}/changes/99")
        self.assertEqual(s, 404, e)

    def test_answers_have_the_shape_google_sends(self):
        log = recorded("dns-recordset_http.log")
        zone, empty, created, listed = log[0][3], log[1][3], log[2][3], log[3][3]
        s, z = self.emu.call("GET", BASE)
        same_shape(self, zone, z, "managedZones.get",
                   ["kind", "name", "dnsName", "id", "creationTime", "description",
                    "nameServers", "visibility", "labels"])
        s, none = self.emu.call("GET", f"{BASE}/rrsets?name=none.gcp.example.com.&type=A")
        self.assertEqual(none, empty)
        s, l = self.emu.call("GET", f"{BASE}/rrsets?name={NAME}&type=CNAME")
        same_shape(self, listed, l, "rrsets.list",
                   ["kind", "rrsets[].kind", "rrsets[].name", "rrsets[].type", "rrsets[].ttl",
                    "rrsets[].rrdatas"])
        conforms(self, DOC, {"$ref": "ResourceRecordSetsListResponse"}, l, "rrsets.list")
        s, c = self.change([rrset("api-use4.example.com.")], l["rrsets"])
        same_shape(self, created, c, "changes.create",
                   ["kind", "id", "startTime", "status", "additions[].name",
                    "additions[].rrdatas", "additions[].ttl", "additions[].type"])
        conforms(self, DOC, {"$ref": "Change"}, c, "changes.create")
        self.assertIn(c["status"], DOC["schemas"]["Change"]["properties"]["status"]["enum"])
        s, g = self.emu.call("GET", f"{BASE}/changes/{c['id']}")
        conforms(self, DOC, {"$ref": "Change"}, g, "changes.get")


if __name__ == "__main__":
    _wait.main()
