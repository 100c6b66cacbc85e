"""Tests of route53_ext.py with boto3 (botocore 1.44 knows the operations;
not drctl's client), against the running world's Route 53 endpoint (the
endpoints file `up` wrote), so the extension is checked against AWS's
model of the API and not only against drctl.

    localstack/.venv/moto/bin/python localstack/test_route53_ext.py
"""
import os
import unittest
import uuid

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def endpoint():
    path = os.environ.get("DRCTL_ENDPOINTS_FILE", os.path.join(HERE, "endpoints.env"))
    with open(path) as f:
        values = dict(line.strip().split("=", 1) for line in f if "=" in line)
    return values["AWS_ENDPOINT_URL_ROUTE_53"]


def client():
    return boto3.client("route53", endpoint_url=endpoint(), region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def code(e):
    return e.exception.response["Error"]["Code"]


class Protections(unittest.TestCase):
    def setUp(self):
        self.r53 = client()
        self.zone_name = f"ext-{uuid.uuid4().hex[:8]}.example."
        zone = self.r53.create_hosted_zone(Name=self.zone_name, CallerReference=uuid.uuid4().hex)
        self.zone = zone["HostedZone"]["Id"].split("/")[-1]
        self.name = "api." + self.zone_name

    def tearDown(self):
        held = self.r53.list_resource_record_set_protections(HostedZoneId=self.zone)
        keys = [{"RecordName": p["RecordName"], "RecordType": p["RecordType"]}
                for p in held["ResourceRecordSetProtections"]]
        if keys:
            self.r53.delete_resource_record_set_protections(HostedZoneId=self.zone, Protections=keys)
        sets = self.r53.list_resource_record_sets(HostedZoneId=self.zone)["ResourceRecordSets"]
        changes = [{"Action": "DELETE", "ResourceRecordSet": s} for s in sets
                   if s["Type"] not in ("SOA", "NS")]
        if changes:
            self.r53.change_resource_record_sets(HostedZoneId=self.zone,
                                                 ChangeBatch={"Changes": changes})
        self.r53.delete_hosted_zone(Id=self.zone)

    def upsert(self, name, value, set_id=None):
        rs = {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": value}]}
        if set_id:
            rs.update(SetIdentifier=set_id, Weight=10)
        return self.r53.change_resource_record_sets(
            HostedZoneId=self.zone,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": rs}]})

    def protect(self, *entries):
        return self.r53.create_resource_record_set_protections(
            HostedZoneId=self.zone, Protections=list(entries))

    def test_a_protected_name_and_type_refuses_every_change_whatever_its_set_identifier(self):
        self.upsert(self.name, "192.0.2.1")
        self.protect({"RecordName": self.name, "RecordType": "A", "Comment": "ticket OPS-1"})
        for set_id in (None, "us-east-1"):
            with self.assertRaises(ClientError) as e:
                self.upsert(self.name, "192.0.2.2", set_id)
            self.assertEqual(code(e), "InvalidChangeBatch")
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        # Nothing was applied, and another type of the same name is free.
        sets = self.r53.list_resource_record_sets(HostedZoneId=self.zone)["ResourceRecordSets"]
        a = [s for s in sets if s["Name"] == self.name and s["Type"] == "A"]
        self.assertEqual([r["Value"] for r in a[0]["ResourceRecords"]], ["192.0.2.1"])
        self.r53.change_resource_record_sets(HostedZoneId=self.zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": self.name, "Type": "TXT", "TTL": 60,
                "ResourceRecords": [{"Value": '"free"'}]}}]})
        # Lifted, the change goes through.
        self.r53.delete_resource_record_set_protections(
            HostedZoneId=self.zone, Protections=[{"RecordName": self.name, "RecordType": "A"}])
        self.upsert(self.name, "192.0.2.2")

    def test_a_name_with_no_record_set_yet_may_be_protected_and_then_not_created(self):
        self.protect({"RecordName": "new." + self.zone_name, "RecordType": "A"})
        with self.assertRaises(ClientError) as e:
            self.upsert("new." + self.zone_name, "192.0.2.9")
        self.assertEqual(code(e), "InvalidChangeBatch")

    def test_the_list_is_sorted_paged_and_starts_where_asked(self):
        names = [f"{c}.{self.zone_name}" for c in "dcba"]
        self.protect(*[{"RecordName": n, "RecordType": "A", "Comment": n} for n in names])
        first = self.r53.list_resource_record_set_protections(HostedZoneId=self.zone, MaxResults="3")
        got = [p["RecordName"] for p in first["ResourceRecordSetProtections"]]
        self.assertEqual(got, sorted(names)[:3])
        self.assertEqual(first["ResourceRecordSetProtections"][0]["Comment"], sorted(names)[0])
        rest = self.r53.list_resource_record_set_protections(
            HostedZoneId=self.zone, NextToken=first["NextToken"])
        self.assertEqual([p["RecordName"] for p in rest["ResourceRecordSetProtections"]],
                         sorted(names)[3:])
        self.assertNotIn("NextToken", rest)
        start = self.r53.list_resource_record_set_protections(
            HostedZoneId=self.zone, StartRecordName="c." + self.zone_name)
        self.assertEqual([p["RecordName"] for p in start["ResourceRecordSetProtections"]],
                         sorted(names)[2:])

    def test_entries_already_protected_or_invalid_change_nothing(self):
        one = {"RecordName": self.name, "RecordType": "A"}
        self.protect(one)
        with self.assertRaises(ClientError) as e:
            self.protect(one)
        self.assertEqual(code(e), "ProtectionAlreadyExists")
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 409)
        other = {"RecordName": "b." + self.zone_name, "RecordType": "A"}
        with self.assertRaises(ClientError) as e:
            self.protect(one, other)
        self.assertEqual(code(e), "InvalidResourceRecordSetProtectionBatch")
        with self.assertRaises(ClientError) as e:
            self.protect({"RecordName": "x.elsewhere.example.", "RecordType": "A"}, one)
        self.assertEqual(code(e), "InvalidResourceRecordSetProtectionBatch")
        held = self.r53.list_resource_record_set_protections(HostedZoneId=self.zone)
        self.assertEqual([p["RecordName"] for p in held["ResourceRecordSetProtections"]],
                         [self.name])
        with self.assertRaises(ClientError) as e:
            self.r53.delete_resource_record_set_protections(HostedZoneId=self.zone,
                                                            Protections=[other])
        self.assertEqual(code(e), "InvalidResourceRecordSetProtectionBatch")
        self.assertEqual(e.exception.response["Errors"][0]["Code"], "ProtectionNotFound")
        with self.assertRaises(ClientError) as e:
            self.protect(other, other)
        self.assertEqual(code(e), "InvalidResourceRecordSetProtectionBatch")

    def test_a_zone_with_protections_is_not_deleted_and_an_unknown_zone_is_named(self):
        self.protect({"RecordName": self.name, "RecordType": "A"})
        with self.assertRaises(ClientError) as e:
            self.r53.delete_hosted_zone(Id=self.zone)
        self.assertEqual(code(e), "HostedZoneNotEmpty")
        with self.assertRaises(ClientError) as e:
            self.r53.list_resource_record_set_protections(HostedZoneId="ZNOSUCHZONE")
        self.assertEqual(code(e), "NoSuchHostedZone")


if __name__ == "__main__":
    unittest.main()
