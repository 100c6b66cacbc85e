"""Stands in for RDS's ReplicaLag publisher in the emulator world.

RDS publishes `AWS/RDS ReplicaLag` about once a minute for every read replica,
for as long as it lives; moto has replicas but no lag and publishes nothing.
This process lists every instance moto knows, in every region below, every
PERIOD seconds, and puts one ReplicaLag data point "now" into LocalStack's
CloudWatch for each read replica it has not seen yet, and then once every
EVERY seconds (a minute, as RDS does), so that a replica created at run time
(a drill's temporary replica, a re-protect replica) is measured on the real
API path like any other within PERIOD of its creation.

Why not every replica every PERIOD: LocalStack's CloudWatch keeps every
point in one SQLite table indexed by metric name and namespace only, and
every GetMetricData of ReplicaLag scans all ReplicaLag rows under one lock.
A test suite seeds hundreds of replicas; at one point each per 10 s the
table grew by tens of thousands of rows in a run, and every read of lag
(each failover's RPO gate, each status) slowed with it.

The value comes from the instance's tag `drctl:replica-lag` (seconds), else
DRCTL_EMULATED_LAG (default 1). A tag value of `none` publishes nothing: the
way to show a replica whose lag is unknown.

Aurora Global Database secondaries too: for every DB cluster that is a
secondary member of a global cluster (IsWriter false), in its region,
`AuroraGlobalDBRPOLag` and `AuroraGlobalDBReplicationLag` (milliseconds,
dimension DBClusterIdentifier), as Aurora publishes them in each secondary
region; the value is the cluster's `drctl:replica-lag` tag in seconds, the
same rule as above.

Started by `localstack/up`, stopped by `localstack/down`; logs to the world dir.
"""
import os
import sys
import time

import boto3
from botocore.config import Config

MOTO = os.environ.get("DRCTL_LAG_MOTO", "http://127.0.0.1:5000")
CLOUDWATCH = os.environ.get("DRCTL_LAG_CLOUDWATCH", "http://127.0.0.1:4566")
REGIONS = os.environ.get("DRCTL_LAG_REGIONS", "us-west-2,us-east-1,eu-west-1").split(",")
PERIOD = float(os.environ.get("DRCTL_LAG_PERIOD", "10"))
EVERY = float(os.environ.get("DRCTL_LAG_EVERY", "60"))
DEFAULT_LAG = float(os.environ.get("DRCTL_EMULATED_LAG", "1"))
CFG = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def client(service, region, url):
    return boto3.client(service, region_name=region, endpoint_url=url, config=CFG, **CREDS)


def lag_of(db):
    tags = {t["Key"]: t["Value"] for t in db.get("TagList", [])}
    value = tags.get("drctl:replica-lag")
    if value is None:
        return DEFAULT_LAG
    if value.strip().lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        return DEFAULT_LAG


def secondary_clusters(rds):
    """The clusters of this region that are secondary members of a global cluster."""
    writers = {}
    for gc in rds.describe_global_clusters().get("GlobalClusters", []):
        for m in gc.get("GlobalClusterMembers", []):
            writers[m["DBClusterArn"]] = m.get("IsWriter", False)
    out = []
    for page in rds.get_paginator("describe_db_clusters").paginate():
        for c in page["DBClusters"]:
            if writers.get(c["DBClusterArn"]) is False:
                out.append(c)
    return out


def publish_once(last):
    """Publishes what is due; `last` maps (region, id) to when it was last
    published (updated here). An instance that is no longer a replica is
    forgotten, so that a replica made again under its name (a re-protect)
    is new again."""
    now = time.monotonic()
    count = 0
    for region in REGIONS:
        rds = client("rds", region, MOTO)
        cw = client("cloudwatch", region, CLOUDWATCH)
        data, due, replicas = [], [], set()
        for page in rds.get_paginator("describe_db_instances").paginate():
            for db in page["DBInstances"]:
                if not db.get("ReadReplicaSourceDBInstanceIdentifier"):
                    continue
                lag = lag_of(db)
                if lag is None:
                    continue
                key = (region, db["DBInstanceIdentifier"])
                replicas.add(key)
                if key in last and now - last[key] < EVERY:
                    continue
                due.append(key)
                data.append({
                    "MetricName": "ReplicaLag", "Unit": "Seconds", "Value": lag,
                    "Dimensions": [{"Name": "DBInstanceIdentifier",
                                    "Value": db["DBInstanceIdentifier"]}],
                })
        for c in secondary_clusters(rds):
            lag = lag_of({"TagList": c.get("TagList", [])})
            if lag is None:
                continue
            key = (region, "cluster:" + c["DBClusterIdentifier"])
            replicas.add(key)
            if key in last and now - last[key] < EVERY:
                continue
            due.append(key)
            for metric in ("AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"):
                data.append({
                    "MetricName": metric, "Unit": "Milliseconds", "Value": lag * 1000.0,
                    "Dimensions": [{"Name": "DBClusterIdentifier", "Value": c["DBClusterIdentifier"]}],
                })
        for i in range(0, len(data), 500):
            cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[i:i + 500])
        for key in [k for k in last if k[0] == region and k not in replicas]:
            del last[key]
        for key in due:
            last[key] = now
        count += len(data)
    return count


def main():
    print(f"lag publisher: new replicas within {PERIOD:g} s, then every {EVERY:g} s, regions {','.join(REGIONS)}, "
          f"default lag {DEFAULT_LAG:g} s", flush=True)
    last_error = None
    last = {}
    while True:
        try:
            n = publish_once(last)
            if last_error is not None:
                print(f"lag publisher: recovered, {n} replicas", flush=True)
                last_error = None
        except Exception as e:  # the emulators restart; keep going
            msg = f"{type(e).__name__}: {e}"
            if msg != last_error:
                print(f"lag publisher: {msg}", file=sys.stderr, flush=True)
                last_error = msg
        time.sleep(PERIOD)


if __name__ == "__main__":
    main()
