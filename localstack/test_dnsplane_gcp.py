"""Tests of dnsplane.py's Cloud DNS answers with clients that are not drctl's
(urllib for the emulators, dnslib for DNS): its own GCP emulator and its own
dnsplane (a free port), the world's fake-gcs-server (DRCTL_GCS_ENDPOINT,
http://127.0.0.1:4443 by default) for the control objects, in a bucket of
its own.

* a plain Cloud DNS record set is answered as it is;
* a `routingPolicy.primaryBackup` answers the primary's value while its
  control says serve, the backup's once the primary's control says drain
  and the backup's serve, and fails closed (a missing or unmapped control is
  unhealthy);
* dnsplane reads the zones through `/emu/`, never `/dns/v1` (`/emu/calls`
  stays empty: a test of drctl asserts a failover made no API call);
* a Cloud SQL write endpoint answers its cluster's primary's address, and
  the new primary's after a switchover.

Run: python3 localstack/test_dnsplane_gcp.py (needs the world's fake-gcs-server).
"""
import json
import os
import sys
import unittest
import urllib.error
import urllib.request
import uuid

from dnslib import DNSRecord

import _wait
from _wait import PROCESS_START, start, stop, wait_until
from test_gcp_emu import Emu, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
GCS = os.environ.get("DRCTL_GCS_ENDPOINT", "http://127.0.0.1:4443").rstrip("/")
P, Z = "emu-test", "orders-zone"
ZONE = "gcpdp.example.com."
NAME = "orders." + ZONE


def gcs(method, path, data=b"", ctype="application/json"):
    req = urllib.request.Request(GCS + path, data=data or None, method=method,
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class DnsplaneGcpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()
        cls.addClassCleanup(cls.emu.stop)  # cleanups run also when setUpClass fails
        cls.port = free_port()
        env = dict(os.environ, DRCTL_DNS_HOST="127.0.0.1", DRCTL_DNS_PORT=str(cls.port),
                   DRCTL_DNS_GCP=cls.emu.url, DRCTL_DNS_GCS=GCS, DRCTL_DNS_REFRESH="0.2",
                   DRCTL_DNS_ROUTE53=os.environ.get("DRCTL_DNS_ROUTE53", "http://127.0.0.1:4566"))
        cls.dns, cls.dns_log = start("dnsplane", [sys.executable, os.path.join(HERE, "dnsplane.py")], env)
        cls.addClassCleanup(stop, cls.dns)
        cls.bucket = f"dnsplane-gcp-{uuid.uuid4().hex[:10]}"
        assert gcs("POST", "/storage/v1/b", json.dumps({"name": cls.bucket}).encode()) in (200, 409)

        # Ready when it answers a question about the tests' zone over UDP
        # (an answer of any kind: the zone itself is made in setUp).
        def answers():
            DNSRecord.parse(DNSRecord.question(ZONE, "SOA").send("127.0.0.1", cls.port, timeout=2))
            return True

        wait_until(f"dnsplane.py to answer DNS on 127.0.0.1:{cls.port}", answers,
                   timeout=PROCESS_START, interval=0.1, proc=cls.dns, log=cls.dns_log)

    def setUp(self):
        self.emu.call("POST", "/emu/reset", {})
        s, b = self.emu.call("POST", "/emu/dns/zones", {"project": P, "name": Z, "dnsName": ZONE})
        self.assertEqual(s, 200, b)

    def control(self, key, state):
        body = f"drctl-control v1\nstate={state}\ntoken=1\nrun=t\nat=2026-11-25T00:00:00Z\n"
        s = gcs("POST", f"/upload/storage/v1/b/{self.bucket}/o?uploadType=media&name={key}",
                body.encode(), "text/plain")
        self.assertEqual(s, 200)

    def ask(self, name=NAME, rtype="A"):
        reply = DNSRecord.parse(DNSRecord.question(name, rtype).send("127.0.0.1", self.port, timeout=3))
        return [str(rr.rdata) for rr in reply.rr]

    def eventually(self, want, name=NAME):
        """Asks until `name` is answered `want` (a question unanswered in
        time is asked again)."""
        last = {}

        def answered():
            last["answer"] = self.ask(name)
            return last["answer"] == want

        wait_until(lambda: f"{name} to be answered {want} (last answer: {last.get('answer', 'none')})",
                   answered, interval=0.25, proc=self.dns, log=self.dns_log)

    def test_a_plain_record_set_is_answered_as_it_is(self):
        self.emu.call("POST", "/emu/dns/records", {"project": P, "zone": Z, "name": "plain." + ZONE,
                                                   "type": "A", "ttl": 60, "rrdatas": ["10.0.0.9"]})
        self.eventually(["10.0.0.9"], "plain." + ZONE)
        s, b = self.emu.call("GET", "/emu/calls")
        self.assertEqual([c for c in b.get("calls", []) if c["path"].startswith("/dns/v1")], [])

    def test_primary_backup_follows_the_controls_and_fails_closed(self):
        key = uuid.uuid4().hex[:8]
        policy = {"primaryBackup": {
            "primaryTargets": {"externalEndpoints": ["10.0.1.1"]},
            "backupGeoTargets": {"items": [{"location": "us-east4", "rrdatas": ["10.0.2.2"],
                                            "healthCheckedTargets": {"externalEndpoints": ["10.0.2.2"]}}]},
            "trickleTraffic": 0}}
        s, b = self.emu.call("POST", "/emu/dns/records", {"project": P, "zone": Z, "name": NAME,
                                                          "type": "A", "ttl": 0, "rrdatas": [],
                                                          "routingPolicy": policy})
        self.assertEqual(s, 200, b)
        for addr, region in (("10.0.1.1", "usc1"), ("10.0.2.2", "use4")):
            self.emu.call("POST", "/emu/dns/health",
                          {"address": addr, "control": f"gs://{self.bucket}/{key}/{region}.json"})
        # No control yet: every target fails closed; the primary is answered.
        self.eventually(["10.0.1.1"])
        self.control(f"{key}/usc1.json", "serve")
        self.control(f"{key}/use4.json", "drain")
        self.eventually(["10.0.1.1"])
        self.control(f"{key}/usc1.json", "drain")
        self.control(f"{key}/use4.json", "serve")
        self.eventually(["10.0.2.2"])
        self.control(f"{key}/usc1.json", "serve")
        self.eventually(["10.0.1.1"])
        s, b = self.emu.call("GET", "/emu/calls")
        self.assertEqual([c for c in b.get("calls", []) if c["path"].startswith("/dns/v1")], [])

    def test_a_write_endpoint_answers_the_primary_and_follows_a_switchover(self):
        for spec in ({"project": P, "name": "west", "region": "us-central1", "ip": "10.9.0.1"},
                     {"project": P, "name": "east", "region": "us-east4", "ip": "10.9.0.2",
                      "masterInstanceName": "west", "drReplica": True}):
            s, b = self.emu.call("POST", "/emu/instances", spec)
            self.assertEqual(s, 200, b)
        s, b = self.emu.call("POST", "/emu/sql/write-endpoints", {"project": P, "name": "west"})
        self.assertEqual(s, 200, b)
        endpoint = b["name"]
        self.eventually(["10.9.0.1"], endpoint)
        s, op = self.emu.call("POST", f"/v1/projects/{P}/instances/east/switchover")
        self.assertEqual(s, 200, op)
        self.eventually(["10.9.0.2"], endpoint)


if __name__ == "__main__":
    _wait.main()
