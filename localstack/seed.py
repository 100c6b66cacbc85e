#!/usr/bin/env python3
"""Seed drctl's reference world into the emulators (idempotent; see localstack/README.md).

Endpoints come from the environment (localstack/seed sources localstack/endpoints.env first):
AWS_ENDPOINT_URL_{ROUTE_53,S3,CLOUDWATCH,RDS,AUTO_SCALING,EC2,EKS,ECS}, DRCTL_GCS_ENDPOINT,
DRCTL_GCP_ENDPOINT (gcp_emu.py: Cloud SQL).
Every client gets an explicit endpoint_url and region, so nothing can reach real AWS.
"""
import argparse
import datetime as dt
import json
import os
import sys
import threading
import traceback
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HOME, STANDBY, THIRD = "us-west-2", "us-east-1", "eu-west-1"
REGIONS = (HOME, STANDBY, THIRD)
TAGS = {HOME: "usw2", STANDBY: "use1", THIRD: "euw1"}
TTL = 60
# moto loads the same 44 canned AMIs into every region; this one is an Ubuntu image among them.
PREFERRED_AMI = "ami-1e749f67"

QUIET = False
LOG = sys.stderr


def say(kind, name, state):
    if not QUIET:
        print(f"{kind:<10} {name:<40} {state}", file=LOG)


def endpoint(var):
    url = os.environ.get(var)
    if not url:
        sys.exit(f"seed: {var} is not set (run localstack/up, or source localstack/endpoints.env)")
    return url


# Clients by (service, region, endpoint), made once: a served seed
# (`--serve`) reuses them, and boto3 makes clients through one session,
# which is not safe to share between threads while it makes one.
_CLIENTS = {}
_CLIENTS_LOCK = threading.Lock()


def client(service, region, var):
    key = (service, region, endpoint(var))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = boto3.client(
                service,
                region_name=region,
                endpoint_url=key[2],
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                              read_timeout=30, s3={"addressing_style": "path"}),
            )
        return _CLIENTS[key]


def code(err):
    return err.response.get("Error", {}).get("Code", "")


# ---------------------------------------------------------------- Route 53
def ensure_zone(r53, zone_name):
    matches = []
    for page in r53.get_paginator("list_hosted_zones").paginate():
        matches += [z for z in page["HostedZones"]
                    if z["Name"] == zone_name and not z.get("Config", {}).get("PrivateZone")]
    if matches:
        # LocalStack allows duplicate zones; always use the oldest-listed one, deterministically.
        zone_id = sorted(z["Id"] for z in matches)[0].split("/")[-1]
        say("zone", zone_name, f"already present ({zone_id})" + (f", {len(matches)} duplicates!" if len(matches) > 1 else ""))
        return zone_id
    resp = r53.create_hosted_zone(Name=zone_name, CallerReference=f"drctl-seed-{zone_name}-{dt.datetime.now().timestamp()}",
                                  HostedZoneConfig={"Comment": "drctl reference world", "PrivateZone": False})
    zone_id = resp["HostedZone"]["Id"].split("/")[-1]
    say("zone", zone_name, f"created ({zone_id})")
    return zone_id


def upsert_records(r53, zone_id, records):
    """UPSERT every record (restores the reference state); report created / already present / restored."""
    existing = {}
    for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rr in page["ResourceRecordSets"]:
            existing[(rr["Name"], rr["Type"], rr.get("SetIdentifier"))] = rr
    changes = []
    for rr in records:
        key = (rr["Name"], rr["Type"], rr.get("SetIdentifier"))
        label = rr["Name"] + (f" [{rr['SetIdentifier']}]" if "SetIdentifier" in rr else "") + f" {rr['Type']}"
        old = existing.get(key)
        if old is None:
            state = "created"
        elif _same_record(old, rr):
            say("record", label, "already present")
            continue
        else:
            state = "restored to reference"
        changes.append({"Action": "UPSERT", "ResourceRecordSet": rr})
        say("record", label, state)
    if changes:
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Comment": "drctl seed", "Changes": changes})


def _same_record(a, b):
    keys = ("Name", "Type", "TTL", "SetIdentifier", "Weight")
    if any(a.get(k) != b.get(k) for k in keys):
        return False
    norm = lambda r: sorted(v["Value"].rstrip(".") for v in r.get("ResourceRecords", []))  # noqa: E731
    return norm(a) == norm(b)


def a_rec(name, ip):
    return {"Name": name, "Type": "A", "TTL": TTL, "ResourceRecords": [{"Value": ip}]}


def cname(name, target, **extra):
    return {"Name": name, "Type": "CNAME", "TTL": TTL, "ResourceRecords": [{"Value": target}], **extra}


# ---------------------------------------------------------------- RDS
def find_db(rds, db_id):
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
    except ClientError as e:
        if code(e) in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return None
        raise


def ensure_primary(rds, db_id):
    region = rds.meta.region_name
    db = find_db(rds, db_id)
    if db:
        say("rds", f"{db_id} ({region})", "already present")
        return db
    rds.create_db_instance(
        DBInstanceIdentifier=db_id, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="drctl", MasterUserPassword="drctl-seed-password", BackupRetentionPeriod=7,
        DBName=db_id.split("-")[0], Tags=[{"Key": "app", "Value": "drctl-reference"}])
    say("rds", f"{db_id} ({region})", "created")
    return find_db(rds, db_id)


def ensure_replica(rds_standby, replica_id, primary, source_region, lag):
    """A cross-region read replica, created with its `drctl:replica-lag` tag:
    the lag publisher lists replicas every 10 s, and one it saw untagged (a
    tag added after creation) got a first point at the default 1 s, which a
    promotion then read as its RPO (a 3 s world measured 1 s under load)."""
    region = rds_standby.meta.region_name
    db = find_db(rds_standby, replica_id)
    if db:
        say("rds", f"{replica_id} ({region})", "already present")
        return db
    rds_standby.create_db_instance_read_replica(
        DBInstanceIdentifier=replica_id, SourceDBInstanceIdentifier=primary["DBInstanceArn"],
        DBInstanceClass="db.t3.micro", SourceRegion=source_region,
        Tags=[{"Key": "drctl:replica-lag", "Value": f"{lag:g}"}])
    say("rds", f"{replica_id} ({region})", "created (replica of " + primary["DBInstanceIdentifier"] + ")")
    return find_db(rds_standby, replica_id)


# ---------------------------------------------------------------- CloudWatch
# RDS publishes ReplicaLag once a minute for as long as the replica lives; the
# emulators have no lag at all. The seed stands in for that publisher: one point
# a minute from LAG_PAST_MIN minutes ago to LAG_AHEAD_MIN minutes ahead, so the
# world stays readable (`drctl status` reads the last 15 minutes) for hours
# after seeding instead of going "lag unknown" a quarter of an hour later.
LAG_PAST_MIN = 15
LAG_AHEAD_MIN = 240


def put_lag(cw, replica_id, seconds, ahead=LAG_AHEAD_MIN):
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    data = [{
        "MetricName": "ReplicaLag", "Unit": "Seconds", "Value": float(seconds),
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica_id}],
        "Timestamp": now - dt.timedelta(minutes=m),
    } for m in range(LAG_PAST_MIN, -ahead - 1, -1)]
    # PutMetricData takes at most 1000 points per call.
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[i:i + 500])
    say("metric", f"ReplicaLag {replica_id}", f"put {len(data)} points = {seconds:g} s")


def put_cluster_lag(cw, cluster_id, seconds, ahead=LAG_AHEAD_MIN):
    """The same for an Aurora global secondary: AuroraGlobalDBRPOLag and
    AuroraGlobalDBReplicationLag (milliseconds) by DBClusterIdentifier, as
    Aurora publishes them in the secondary's region."""
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    data = [{
        "MetricName": metric, "Unit": "Milliseconds", "Value": float(seconds) * 1000.0,
        "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cluster_id}],
        "Timestamp": now - dt.timedelta(minutes=m),
    } for m in range(LAG_PAST_MIN, -ahead - 1, -1)
      for metric in ("AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag")]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[i:i + 500])
    say("metric", f"AuroraGlobalDBRPOLag {cluster_id}", f"put {len(data)} points = {seconds:g} s")


# ---------------------------------------------------------------- Auto Scaling
def pick_ami(ec2):
    try:
        imgs = ec2.describe_images(ImageIds=[PREFERRED_AMI])["Images"]
        if imgs:
            return PREFERRED_AMI
    except ClientError:
        pass
    imgs = ec2.describe_images(Owners=["amazon"])["Images"]
    if not imgs:
        sys.exit("seed: moto has no AMIs to build a launch template from")
    return sorted(i["ImageId"] for i in imgs)[0]


def ensure_template(ec2, name):
    try:
        lt = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
        if lt:
            say("template", f"{name} ({ec2.meta.region_name})", "already present")
            return name
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": pick_ami(ec2), "InstanceType": "t3.micro"})
    say("template", f"{name} ({ec2.meta.region_name})", "created")
    return name


def ensure_asg(asg, name, template, az, mn, desired, mx):
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if found:
        g = found[0]
        if (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (mn, desired, mx):
            say("asg", f"{name} ({asg.meta.region_name})", f"already present ({mn}/{desired}/{mx})")
        else:
            asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=mn, DesiredCapacity=desired, MaxSize=mx)
            say("asg", f"{name} ({asg.meta.region_name})", f"restored to reference ({mn}/{desired}/{mx}, was "
                f"{g['MinSize']}/{g['DesiredCapacity']}/{g['MaxSize']})")
        return
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": template, "Version": "$Default"},
        MinSize=mn, DesiredCapacity=desired, MaxSize=mx, AvailabilityZones=[az],
        Tags=[{"Key": "app", "Value": "drctl-reference", "PropagateAtLaunch": True}])
    say("asg", f"{name} ({asg.meta.region_name})", f"created ({mn}/{desired}/{mx})")


# ---------------------------------------------------------------- buckets
def ensure_s3_bucket(s3, name, object_lock=True):
    """Creates `name` in the client's region (versioning on; object lock when asked)."""
    region = s3.meta.region_name
    try:
        s3.head_bucket(Bucket=name)
        say("s3", f"{name} ({region})", "already present")
    except ClientError as e:
        if code(e) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        # us-east-1: no CreateBucketConfiguration (LocationConstraint us-east-1 is invalid)
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        lock = object_lock
        try:
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock, **where)
        except ClientError:
            lock = False
            s3.create_bucket(Bucket=name, **where)
        say("s3", f"{name} ({region})", "created" + (" (object lock enabled)" if lock else ""))
    if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    try:
        lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"].get("ObjectLockEnabled") == "Enabled"
    except ClientError:
        lock = False
    return lock


def ensure_gcs_bucket(gcs_url, name):
    base = gcs_url.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/storage/v1/b/{urllib.parse.quote(name)}", timeout=10):
            say("gcs", name, "already present")
            return
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    req = urllib.request.Request(f"{base}/storage/v1/b?project=test", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):
        pass
    say("gcs", name, "created")


GCP_PROJECT = "drctl-emu"
GCP_HOME, GCP_STANDBY = "us-central1", "us-east4"


def gcp_call(gcp_url, method, path, body=None):
    req = urllib.request.Request(gcp_url.rstrip("/") + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ensure_cloud_sql(gcp_url, primary, replica, lag):
    """The orders Cloud SQL pair in gcp_emu.py: a primary in us-central1 and
    its cross-region (Enterprise Plus DR) read replica in us-east4, whose
    replica_lag is `lag` seconds."""
    for name, extra in ((primary, {"region": GCP_HOME}),
                        (replica, {"region": GCP_STANDBY, "masterInstanceName": primary,
                                   "drReplica": True, "lag": lag})):
        status, _ = gcp_call(gcp_url, "GET", f"/v1/projects/{GCP_PROJECT}/instances/{name}")
        if status == 200:
            say("cloud-sql", name, "already present")
            continue
        status, body = gcp_call(gcp_url, "POST", "/emu/instances",
                                dict({"project": GCP_PROJECT, "name": name}, **extra))
        if status != 200:
            sys.exit(f"seed: cannot seed Cloud SQL {name}: {body}")
        say("cloud-sql", name, "created")
    gcp_call(gcp_url, "POST", "/emu/lag", {"project": GCP_PROJECT, "name": replica, "seconds": lag})
    return {"project": GCP_PROJECT, "primary": {"name": primary, "region": GCP_HOME},
            "replica": {"name": replica, "region": GCP_STANDBY, "lag": lag}}


def ensure_sql_backups(gcp_url, primary, standby, reset):
    """archive-gcp (plans/gcp/archive-gcp.toml): a Cloud SQL primary in
    us-central1 whose standby in us-east4 is a backup kept there (made with
    the API's `location`), no instance. `reset` deletes what a failover
    restored there (`standby`), so that a failover can restore again."""
    status, _ = gcp_call(gcp_url, "GET", f"/v1/projects/{GCP_PROJECT}/instances/{primary}")
    if status != 200:
        status, body = gcp_call(gcp_url, "POST", "/emu/instances",
                                {"project": GCP_PROJECT, "name": primary, "region": GCP_HOME})
        if status != 200:
            sys.exit(f"seed: cannot seed Cloud SQL {primary}: {body}")
        say("cloud-sql", primary, "created")
    if reset:
        status, _ = gcp_call(gcp_url, "DELETE", f"/v1/projects/{GCP_PROJECT}/instances/{standby}")
        if status == 200:
            say("cloud-sql", standby, "deleted (reset)")
    flt = urllib.parse.quote(f'instance="{primary}"')
    _, listed = gcp_call(gcp_url, "GET", f"/v1/projects/{GCP_PROJECT}/backups?filter={flt}")
    if any(b.get("location") == GCP_STANDBY for b in (listed or {}).get("backups", [])):
        say("cloud-sql", f"backup of {primary} in {GCP_STANDBY}", "already present")
    else:
        status, body = gcp_call(gcp_url, "POST", f"/v1/projects/{GCP_PROJECT}/backups",
                                {"instance": primary, "location": GCP_STANDBY})
        if status != 200:
            sys.exit(f"seed: cannot back up Cloud SQL {primary}: {body}")
        say("cloud-sql", f"backup of {primary} in {GCP_STANDBY}", "started")
    return {"project": GCP_PROJECT, "primary": {"name": primary, "region": GCP_HOME},
            "backups_in": GCP_STANDBY, "restores_into": standby}


def ensure_instance_groups(gcp_url, home, standby):
    """The orders workers' regional managed instance groups in gcp_emu.py
    (plans/gcp/orders-gcp.toml): three instances in us-central1 behind an
    autoscaler (minimum 3), one in us-east4 without one, which a failover
    resizes."""
    for name, region, size, scaler in ((home, GCP_HOME, 3, {"name": f"{home}-as", "min": 3, "max": 12}),
                                       (standby, GCP_STANDBY, 1, None)):
        path = f"/compute/v1/projects/{GCP_PROJECT}/regions/{region}/instanceGroupManagers/{name}"
        status, _ = gcp_call(gcp_url, "GET", path)
        if status == 200:
            say("instance-group", name, "already present")
            continue
        spec = {"project": GCP_PROJECT, "region": region, "name": name, "size": size}
        if scaler:
            spec["autoscaler"] = scaler
        status, body = gcp_call(gcp_url, "POST", "/emu/compute/groups", spec)
        if status != 200:
            sys.exit(f"seed: cannot seed instance group {name}: {body}")
        say("instance-group", name, "created")
    return {"project": GCP_PROJECT, "home": {"name": home, "region": GCP_HOME, "size": 3},
            "standby": {"name": standby, "region": GCP_STANDBY, "size": 1}}
def ensure_cloud_run(gcp_url, name, active, standby):
    """The orders API on Cloud Run in gcp_emu.py (its gcp_emu_run.py part):
    the same service name in us-central1, serving at `active` minimum
    instances, and in us-east4 at `standby` (plans/gcp/orders-gcp.toml).
    The floor is the SERVICE-level one (`scaling.minInstanceCount`: the seed
    spec's `minInstanceCount`), as Google recommends; no revision floor
    (`revisionMinInstanceCount`) and no labels are seeded. `--json` reports
    it as `min_instances`."""
    out = {"project": GCP_PROJECT, "name": name, "regions": {}}
    for region, floor in ((GCP_HOME, active), (GCP_STANDBY, standby)):
        path = f"/v2/projects/{GCP_PROJECT}/locations/{region}/services/{name}"
        status, _ = gcp_call(gcp_url, "GET", path)
        if status == 200:
            say("cloud-run", f"{region}/{name}", "already present")
        else:
            # minInstanceCount: the service-level floor; maxInstanceCount: the revision's.
            status, body = gcp_call(gcp_url, "POST", "/emu/run/services",
                                    {"project": GCP_PROJECT, "location": region, "name": name,
                                     "minInstanceCount": floor, "maxInstanceCount": 20})
            if status != 200:
                sys.exit(f"seed: cannot seed Cloud Run {region}/{name}: {body}")
            say("cloud-run", f"{region}/{name}", "created")
        out["regions"][region] = {"min_instances": floor}
    return out


def ensure_cloud_dns(gcp_url, zone, name, value, ttl=60):
    """The orders record in Cloud DNS in gcp_emu.py (its gcp_emu_dns.py
    part): managed zone `zone` (gcp.example.com.) and CNAME `name` pointing
    at us-central1's API, `value` (plans/gcp/orders-gcp.toml, [[cloud_dns]]).
    A record already there is left as it is (a failover may have moved it)."""
    base = f"/dns/v1/projects/{GCP_PROJECT}/managedZones/{zone}"
    status, _ = gcp_call(gcp_url, "GET", base)
    if status == 200:
        say("cloud-dns", zone, "already present")
    else:
        status, body = gcp_call(gcp_url, "POST", "/emu/dns/zones",
                                {"project": GCP_PROJECT, "name": zone,
                                 "dnsName": "gcp.example.com."})
        if status == 404:  # an emulator from before its Cloud DNS part
            say("cloud-dns", zone, "skipped (gcp_emu.py has no Cloud DNS: rerun localstack/up)")
            return None
        if status != 200:
            sys.exit(f"seed: cannot seed Cloud DNS zone {zone}: {body}")
        say("cloud-dns", zone, "created")
    status, body = gcp_call(gcp_url, "GET", f"{base}/rrsets?name={name}&type=CNAME")
    have = (body or {}).get("rrsets") or []
    if have:
        say("cloud-dns", name, "already present")
        value = have[0]["rrdatas"][0]
    else:
        status, body = gcp_call(gcp_url, "POST", "/emu/dns/records",
                                {"project": GCP_PROJECT, "zone": zone, "name": name,
                                 "type": "CNAME", "ttl": ttl, "rrdatas": [value]})
        if status != 200:
            sys.exit(f"seed: cannot seed Cloud DNS record {name}: {body}")
        say("cloud-dns", name, "created")
    return {"project": GCP_PROJECT, "zone": zone, "name": name, "value": value}


# ------------------------------------------------------ backups as standby
def ensure_subnet_group(rds, ec2, name):
    """A DB subnet group over the region's default subnets (moto's default
    VPC): where a restore there is placed. Shared by every world."""
    region = rds.meta.region_name
    try:
        rds.describe_db_subnet_groups(DBSubnetGroupName=name)
        say("rds", f"subnet group {name} ({region})", "already present")
        return
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]]
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="drctl reference: restores",
                               SubnetIds=subnets[:2])
    say("rds", f"subnet group {name} ({region})", "created")


def ensure_parameter_group(rds, name, family):
    """A DB parameter group (the plan's `parameter_groups`): what a restore
    there is given. Shared by every world."""
    region = rds.meta.region_name
    try:
        # RDS answers a name it lacks with DBParameterGroupNotFound; moto
        # 5.2 with an empty list.
        if rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"]:
            say("rds", f"parameter group {name} ({region})", "already present")
            return
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=family,
                                  Description="drctl reference: archive-db's tuning")
    say("rds", f"parameter group {name} ({region})", "created")


def ensure_backups_standby(rds_home, rds_standby, primary, snapshot):
    """archive's standby (plans/archive.toml): the primary's automated
    backups replicated into the standby region, and one snapshot of it
    copied there. No instance runs in the standby region."""
    standby = rds_standby.meta.region_name
    try:
        rds_standby.start_db_instance_automated_backups_replication(
            SourceDBInstanceArn=primary["DBInstanceArn"], BackupRetentionPeriod=7)
        say("rds", f"backups of {primary['DBInstanceIdentifier']} -> {standby}", "replication started")
    except ClientError as e:
        if code(e) not in ("DBInstanceAutomatedBackupStateFault", "InvalidDBInstanceAutomatedBackupState",
                           "InvalidDBInstanceAutomatedBackupStateFault"):
            raise
        say("rds", f"backups of {primary['DBInstanceIdentifier']} -> {standby}", "already replicated")
    try:
        home_snap = rds_home.describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"][0]
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
        home_snap = rds_home.create_db_snapshot(
            DBSnapshotIdentifier=snapshot, DBInstanceIdentifier=primary["DBInstanceIdentifier"])["DBSnapshot"]
    try:
        rds_standby.describe_db_snapshots(DBSnapshotIdentifier=snapshot)
        say("rds", f"snapshot {snapshot} ({standby})", "already copied")
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
        rds_standby.copy_db_snapshot(SourceDBSnapshotIdentifier=home_snap["DBSnapshotArn"],
                                     TargetDBSnapshotIdentifier=snapshot)
        say("rds", f"snapshot {snapshot} ({standby})", "copy started")


def ensure_cluster_parameter_group(rds, name, family):
    """A DB cluster parameter group (a backup cluster's
    `cluster_parameter_groups`): what a restore there is given."""
    region = rds.meta.region_name
    try:
        if rds.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=name)["DBClusterParameterGroups"]:
            say("rds", f"cluster parameter group {name} ({region})", "already present")
            return
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=name, DBParameterGroupFamily=family,
                                          Description="drctl reference: archive-ledger's tuning")
    say("rds", f"cluster parameter group {name} ({region})", "created")


def ensure_cluster_snapshots_standby(rds_home, rds_standby, cluster_id, snapshot, group):
    """archive-ledger's standby (plans/archive.toml): an Aurora cluster in the
    home region with its writer, and one cluster snapshot of it copied into
    the standby region (`CopyDBClusterSnapshot`). No cluster runs there."""
    home, standby = rds_home.meta.region_name, rds_standby.meta.region_name
    if find_cluster(rds_home, cluster_id) is None:
        rds_home.create_db_cluster(
            DBClusterIdentifier=cluster_id, Engine="aurora-postgresql", EngineVersion="16.4",
            MasterUsername="drctl", MasterUserPassword="reference-only-1", DBClusterParameterGroupName=group,
            Tags=[{"Key": "app", "Value": "drctl-reference"}])
        say("aurora", f"{cluster_id} ({home})", "created")
    writer = f"{cluster_id}-writer"
    if not find_db(rds_home, writer):
        rds_home.create_db_instance(DBInstanceIdentifier=writer, DBClusterIdentifier=cluster_id,
                                    Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        say("aurora", f"{writer} ({home})", "created (writer)")
    try:
        (home_snap,) = rds_home.describe_db_cluster_snapshots(
            DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshots"]
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
        home_snap = rds_home.create_db_cluster_snapshot(
            DBClusterIdentifier=cluster_id, DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshot"]
    try:
        rds_standby.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)
        say("aurora", f"cluster snapshot {snapshot} ({standby})", "already copied")
    except ClientError as e:
        if "NotFound" not in code(e):
            raise
        rds_standby.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=home_snap["DBClusterSnapshotArn"],
                                             TargetDBClusterSnapshotIdentifier=snapshot, SourceRegion=home)
        say("aurora", f"cluster snapshot {snapshot} ({standby})", "copy started")
    return find_cluster(rds_home, cluster_id)


def reset_backup_clusters(rds, ids):
    """Deletes the clusters `ids` in every region with their instances: the
    home cluster and what a restore made under its name elsewhere (a
    parked one too: `<id>-pre-xxxx`). Reseeding makes the home one again."""
    import re
    derived = re.compile("^(" + "|".join(re.escape(i) for i in ids) + r")(-pre-[a-z0-9]{1,4})?$")
    for region, c in rds.items():
        for cl in c.describe_db_clusters()["DBClusters"]:
            ident = cl["DBClusterIdentifier"]
            if not derived.match(ident):
                continue
            for m in cl.get("DBClusterMembers", []):
                try:
                    c.delete_db_instance(DBInstanceIdentifier=m["DBInstanceIdentifier"], SkipFinalSnapshot=True)
                except ClientError as e:
                    if "NotFound" not in code(e):
                        raise
            c.delete_db_cluster(DBClusterIdentifier=ident, SkipFinalSnapshot=True)
            say("aurora", f"{region} {ident}", "deleted (reset)")


# ---------------------------------------------------------------- main
def reset_databases(rds, n):
    """Deletes this world's instances (replicas first): the reference ids, and the
    ids drctl derives from them (`<id>-pre-xxxx` for a parked old primary,
    `<id>-rxxxxxx` for a point-in-time restore)."""
    import re
    bases = [n(f"{app}-db{tail}") for app in ("payments", "ledger") for tail in ("", "-use1")]
    bases += [n("payments-db-euw1")] + [n(f"checkout-db{tail}") for tail in ("", "-usw2", "-euw1")]
    bases += [n(f"storefront-db{tail}") for tail in ("", "-use1")]
    # archive's primary, and the instance a restore in the standby region makes (the same name).
    bases += [n("archive-db")]
    derived = re.compile("^(" + "|".join(re.escape(b) for b in bases) + r")(-pre-[a-z0-9]{1,4}|-r[a-z0-9]{1,6})?$")
    # Replicas first. moto keeps a promoted replica's source and can fail (HTTP 500)
    # deleting an instance whose source is gone, so go round until nothing is left.
    for _ in range(4):
        left = []
        for region, c in rds.items():
            for inst in c.describe_db_instances()["DBInstances"]:
                if derived.match(inst["DBInstanceIdentifier"]):
                    left.append((region, c, inst))
        if not left:
            return
        left.sort(key=lambda x: not x[2].get("ReadReplicaSourceDBInstanceIdentifier"))
        for region, c, inst in left:
            ident = inst["DBInstanceIdentifier"]
            try:
                c.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
                say("rds", f"{region} {ident}", "deleted (reset)")
            except Exception as e:  # noqa: BLE001 - retried next round
                say("rds", f"{region} {ident}", f"delete failed, retrying: {type(e).__name__}")
    sys.exit("seed: could not delete every instance of this world; restart the emulators (localstack/down && localstack/up)")


# ------------------------------------------------- Aurora Global Database
def find_cluster(rds, cluster_id):
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    except ClientError as e:
        if code(e) == "DBClusterNotFoundFault":
            return None
        raise


def ensure_global_cluster(rds, cw, global_id, members, lag, ahead=LAG_AHEAD_MIN):
    """A global cluster `global_id` whose writer is members[0] = (region, id)
    and whose secondaries are the rest, each tagged with its lag for the lag
    publisher. Idempotent: present members are left as they are (a failover
    may have moved the writer; --reset-databases puts it back)."""
    home, writer_id = members[0]
    w = find_cluster(rds[home], writer_id)
    if w is None:
        w = rds[home].create_db_cluster(
            DBClusterIdentifier=writer_id, Engine="aurora-postgresql", EngineVersion="15.4",
            MasterUsername="drctl", MasterUserPassword="reference-only-1")["DBCluster"]
        say("aurora", f"{writer_id} ({home})", "created")
    else:
        say("aurora", f"{writer_id} ({home})", "already present")
    try:
        rds[home].describe_global_clusters(GlobalClusterIdentifier=global_id)
        say("global", global_id, "already present")
    except ClientError as e:
        if code(e) != "GlobalClusterNotFoundFault":
            raise
        rds[home].create_global_cluster(GlobalClusterIdentifier=global_id,
                                        SourceDBClusterIdentifier=w["DBClusterArn"])
        say("global", global_id, f"created (writer {writer_id} in {home})")
    out = {"id": global_id, "members": {}}
    for i, (region, cid) in enumerate(members):
        c = find_cluster(rds[region], cid)
        if c is None:
            c = rds[region].create_db_cluster(
                DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="15.4",
                GlobalClusterIdentifier=global_id)["DBCluster"]
            say("aurora", f"{cid} ({region})", f"created (secondary of {global_id})")
        if i > 0:
            rds[region].add_tags_to_resource(ResourceName=c["DBClusterArn"],
                                             Tags=[{"Key": "drctl:replica-lag", "Value": f"{lag:g}"}])
            put_cluster_lag(cw[region], cid, lag, ahead)
        out["members"][region] = {"id": cid, "arn": c["DBClusterArn"], "writer_endpoint": c.get("Endpoint"),
                                  "reader_endpoint": c.get("ReaderEndpoint")}
    return out


def reset_global_cluster(rds, global_id, members):
    """Deletes the global cluster `global_id` and its reference members
    (--reset-databases): the roles come back on the next seed."""
    try:
        gc = rds[HOME].describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0]
    except ClientError as e:
        if code(e) != "GlobalClusterNotFoundFault":
            raise
        gc = None
    if gc is not None:
        for m in gc.get("GlobalClusterMembers", []):
            region = m["DBClusterArn"].split(":")[3]
            rds[region].remove_from_global_cluster(GlobalClusterIdentifier=global_id,
                                                   DbClusterIdentifier=m["DBClusterArn"])
        rds[HOME].delete_global_cluster(GlobalClusterIdentifier=global_id)
        say("global", global_id, "deleted (reset)")
    for region, cid in members:
        if find_cluster(rds[region], cid) is not None:
            rds[region].delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
            say("aurora", f"{region} {cid}", "deleted (reset)")


# ------------------------------------------------------ EKS node groups
def ensure_node_group(eks, cluster, group, mn, desired, mx):
    """An EKS cluster and one managed node group at (min, desired, max); a
    present group is put back to these sizes (as ensure_asg does)."""
    region = eks.meta.region_name
    try:
        eks.describe_cluster(name=cluster)
    except ClientError as e:
        if code(e) != "ResourceNotFoundException":
            raise
        eks.create_cluster(name=cluster, roleArn="arn:aws:iam::123456789012:role/drctl-reference-eks",
                           resourcesVpcConfig={"subnetIds": [f"subnet-{TAGS[region]}a", f"subnet-{TAGS[region]}b"]})
        say("eks", f"{cluster} ({region})", "created")
    try:
        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]
        sc = ng["scalingConfig"]
        have = (sc.get("minSize"), sc.get("desiredSize"), sc.get("maxSize"))
        if have != (mn, desired, mx):
            eks.update_nodegroup_config(clusterName=cluster, nodegroupName=group,
                                        scalingConfig={"minSize": mn, "desiredSize": desired, "maxSize": mx})
            say("nodegroup", f"{group} ({region})", f"restored to reference ({mn}/{desired}/{mx}, was {have})")
        else:
            say("nodegroup", f"{group} ({region})", f"already present ({mn}/{desired}/{mx})")
    except ClientError as e:
        if code(e) != "ResourceNotFoundException":
            raise
        eks.create_nodegroup(clusterName=cluster, nodegroupName=group,
                             nodeRole="arn:aws:iam::123456789012:role/drctl-reference-nodes",
                             subnets=[f"subnet-{TAGS[region]}a"],
                             scalingConfig={"minSize": mn, "desiredSize": desired, "maxSize": mx})
        say("nodegroup", f"{group} ({region})", f"created ({mn}/{desired}/{mx})")
    return {"region": region, "cluster": cluster, "nodegroup": group, "min": mn, "desired": desired, "max": mx}


# ------------------------------------------------------- ECS services
def ensure_ecs_service(ecs, ec2, cluster, service, family, desired):
    """An ECS cluster holding one Fargate service at `desired` tasks (its task
    definition `family` registered first). A present service is set back to
    `desired` (as ensure_node_group does a node group's sizes), and loses
    every tag whose key starts with `drctl:` (what a drill or a failover
    marked it with); other tags stay."""
    region = ecs.meta.region_name
    found = ecs.describe_clusters(clusters=[cluster])["clusters"]
    if not found or found[0]["status"] != "ACTIVE":
        ecs.create_cluster(clusterName=cluster, tags=[{"key": "app", "value": "drctl-reference"}])
        say("ecs", f"{cluster} ({region})", "created")
    svcs = [s for s in ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])["services"]
            if s["status"] == "ACTIVE"]
    if svcs:
        svc = svcs[0]
        notes = []
        if svc["desiredCount"] != desired:
            ecs.update_service(cluster=cluster, service=service, desiredCount=desired)
            notes.append(f"desired {desired}, was {svc['desiredCount']}")
        marks = sorted(t["key"] for t in svc.get("tags") or [] if t["key"].startswith("drctl:"))
        if marks:
            ecs.untag_resource(resourceArn=svc["serviceArn"], tagKeys=marks)
            notes.append("removed " + ", ".join(marks))
        say("ecs", f"{cluster}/{service} ({region})",
            f"restored to reference ({'; '.join(notes)})" if notes else f"already present (desired {desired})")
    else:
        try:
            ecs.describe_task_definition(taskDefinition=family)
        except ClientError as e:
            if code(e) != "ClientException":
                raise
            ecs.register_task_definition(
                family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": "worker", "image": "public.ecr.aws/docker/library/busybox:stable",
                                       "essential": True, "command": ["sleep", "infinity"]}])
            say("taskdef", f"{family} ({region})", "registered")
        # Fargate tasks need an awsvpc network: the region's default VPC (moto makes one per region).
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        vpcs = {sn["VpcId"] for sn in subnets}
        network = {}
        if subnets:
            network["networkConfiguration"] = {"awsvpcConfiguration": {
                "subnets": sorted(sn["SubnetId"] for sn in subnets)[:2],
                "securityGroups": [g["GroupId"] for g in groups if g["VpcId"] in vpcs][:1],
                "assignPublicIp": "DISABLED"}}
        svc = ecs.create_service(
            cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=desired, launchType="FARGATE",
            tags=[{"key": "app", "value": "drctl-reference"}], **network)["service"]
        say("ecs", f"{cluster}/{service} ({region})", f"created (desired {desired})")
    return {"region": region, "cluster": cluster, "service": service, "arn": svc["serviceArn"], "desired": desired}


class Kube:
    """One region's Kubernetes control plane (localstack/kube/up), as its admin:
    server-side apply of the objects the reference plans name, over plain HTTPS."""

    def __init__(self, region, world):
        import ssl
        self.region = region
        self.server = world["server"]
        self.token = world["admin_token"]
        self.ctx = ssl.create_default_context(cafile=world["ca"])

    def call(self, method, path, body=None, content="application/apply-patch+yaml"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", content)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            sys.exit(f"seed: kubernetes {self.region} {method} {path}: {e.code} {e.read()[:400]!r}")

    def apply(self, obj):
        """Server-side apply of `obj` (forced: the seed owns what it sets, and
        takes back a field drctl changed, so seeding again resets the world)."""
        group_version = obj["apiVersion"]
        kind = obj["kind"]
        plural = {"Namespace": "namespaces", "Role": "roles", "RoleBinding": "rolebindings",
                  "Deployment": "deployments", "StatefulSet": "statefulsets", "CronJob": "cronjobs",
                  "HorizontalPodAutoscaler": "horizontalpodautoscalers"}[kind]
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        ns = obj["metadata"].get("namespace")
        where = f"/namespaces/{ns}" if ns else ""
        name = obj["metadata"]["name"]
        return self.call("PATCH", f"{base}{where}/{plural}/{name}?fieldManager=drctl-seed&force=true", obj)


def kube_workloads(ns, replicas, hpa, cron_runs):
    """catalog's workloads in one region (plans/catalog.toml): the web
    Deployment and its HPA, the cache StatefulSet, the reindex CronJob."""
    labels = lambda app: {"app": app}  # noqa: E731
    pod = lambda app: {"metadata": {"labels": labels(app)},  # noqa: E731
                       "spec": {"containers": [{"name": app, "image": f"registry.example.com/catalog/{app}:1"}]}}
    web, cache = replicas
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "catalog-web", "namespace": ns},
         "spec": {"replicas": web, "selector": {"matchLabels": labels("catalog-web")},
                  "progressDeadlineSeconds": 600, "template": pod("catalog-web")}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "catalog-web", "namespace": ns},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "catalog-web"},
                  "minReplicas": hpa[0], "maxReplicas": hpa[1],
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                               "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "catalog-cache", "namespace": ns},
         "spec": {"replicas": cache, "serviceName": "catalog-cache", "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": labels("catalog-cache")}, "template": pod("catalog-cache")}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "catalog-reindex", "namespace": ns},
         "spec": {"schedule": "17 * * * *", "suspend": not cron_runs,
                  "jobTemplate": {"spec": {"template": {"spec": {
                      "restartPolicy": "OnFailure",
                      "containers": [{"name": "reindex", "image": "registry.example.com/catalog/reindex:1"}]}}}}}},
    ]


def ensure_kube(ns):
    """catalog's namespace in each region's control plane: drctl's Role
    (deploy/kubernetes/drctl-role.yaml) bound to the world's `drctl` user,
    and its workloads at their active sizes in HOME, at standby elsewhere."""
    import yaml
    path = os.environ.get("DRCTL_KUBE_WORLD")
    if not path or not os.path.exists(path):
        say("kubernetes", "-", "skipped (DRCTL_KUBE_WORLD unset: rerun localstack/up)")
        return None
    with open(path) as f:
        world = json.load(f)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "deploy", "kubernetes", "drctl-role.yaml")) as f:
        role = yaml.safe_load(f)
    out = {}
    for region, plane in world["regions"].items():
        k = Kube(region, plane)
        k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        k.apply(dict(role, metadata={"name": "drctl", "namespace": ns}))
        k.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "drctl", "namespace": ns},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "drctl"},
                 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "drctl"}]})
        home = region == HOME
        for obj in kube_workloads(ns, (3, 3) if home else (0, 1), (3, 12) if home else (1, 1), home):
            k.apply(obj)
        say("kubernetes", f"{region}/{ns}", "catalog-web, catalog-cache, catalog-reindex")
        out[region] = {"server": plane["server"], "namespace": ns}
    return out


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suffix", default="", help="append -S to every id/bucket; zone becomes S.example.com.")
    ap.add_argument("--lag-payments", type=float, default=3, help="ReplicaLag seconds for payments (default 3)")
    ap.add_argument("--lag-ledger", type=float, default=1200, help="ReplicaLag seconds for ledger (default 1200)")
    ap.add_argument("--lag-orders", type=float, default=2,
                    help="Aurora global lag seconds for orders' secondaries (default 2)")
    ap.add_argument("--lag-checkout", type=float, default=2, help="ReplicaLag seconds for checkout (default 2)")
    ap.add_argument("--lag-storefront", type=float, default=2,
                    help="ReplicaLag seconds for storefront's RDS replica (default 2)")
    ap.add_argument("--json", action="store_true", help="print a JSON description of the world on stdout")
    ap.add_argument("--kubernetes", action="store_true",
                    help="also seed catalog's namespace and workloads in each region's Kubernetes control plane")
    ap.add_argument("--quiet", action="store_true", help="no per-resource lines")
    ap.add_argument("--reset-databases", action="store_true",
                    help="first delete this world's DB instances (incl. ones drctl renamed or restored) so the "
                         "reference roles come back after a failover; other worlds are left alone")
    ap.add_argument("--serve", action="store_true",
                    help="seed on request: a JSON line a request on stdin ({\"id\", \"args\"}: this command's "
                         "arguments), a JSON line an answer on stdout ({\"id\", \"ok\", \"world\" or \"error\"}), "
                         "each request in a thread of its own, until the end of input")
    return ap


def main():
    global QUIET
    args = parser().parse_args()
    if args.serve:
        QUIET = True
        serve(sys.stdin, sys.stdout)
        return
    QUIET = args.quiet
    out = seed(args)
    if out is not None:
        json.dump(out, sys.stdout, indent=2)
        print()


def serve(requests, answers):
    """Seeds one world per request line, concurrently, answering each on a
    line of its own: what a test binary that seeds a world per test asks
    of one process, with no interpreter started and no client made again
    per seed. A seed that fails answers its error (`sys.exit`'s message, or
    the traceback), and the next is served all the same."""
    lock = threading.Lock()

    def answer(msg):
        with lock:
            try:
                answers.write(json.dumps(msg) + "\n")
                answers.flush()
            except (BrokenPipeError, ValueError):
                # The asker is gone (the test binary ended or aborted): no
                # one to answer, nothing to say.
                pass

    def one(line):
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            answer({"id": None, "ok": False, "error": f"not a JSON request: {e}"})
            return
        try:
            args = parser().parse_args(req.get("args", []))
            answer({"id": req.get("id"), "ok": True, "world": seed(args)})
        except SystemExit as e:
            answer({"id": req.get("id"), "ok": False, "error": f"seed: exited: {e.code}"})
        except Exception:  # noqa: BLE001 - the error is the answer
            answer({"id": req.get("id"), "ok": False, "error": traceback.format_exc()})

    workers = []
    for line in requests:
        if line.strip():
            t = threading.Thread(target=one, args=(line,), daemon=True)
            t.start()
            workers.append(t)
    for t in workers:
        t.join()


def seed(args):
    """Seeds the world `args` (parsed by `parser`) names; its description
    when `args.json`, else None."""
    sfx = args.suffix.strip()
    if sfx and not all(c.isalnum() or c == "-" for c in sfx):
        sys.exit("seed: --suffix may hold only letters, digits and '-'")
    n = (lambda base: f"{base}-{sfx}") if sfx else (lambda base: base)
    zone_name = f"{sfx}.example.com." if sfx else "example.com."
    d = lambda host: f"{host}.{zone_name}"  # noqa: E731

    r53 = client("route53", HOME, "AWS_ENDPOINT_URL_ROUTE_53")
    s3r = {r: client("s3", r, "AWS_ENDPOINT_URL_S3") for r in REGIONS}
    cw = {r: client("cloudwatch", r, "AWS_ENDPOINT_URL_CLOUDWATCH") for r in REGIONS}
    rds = {r: client("rds", r, "AWS_ENDPOINT_URL_RDS") for r in REGIONS}
    ec2 = {r: client("ec2", r, "AWS_ENDPOINT_URL_EC2") for r in REGIONS}
    asg = {r: client("autoscaling", r, "AWS_ENDPOINT_URL_AUTO_SCALING") for r in REGIONS}
    eks = {r: client("eks", r, "AWS_ENDPOINT_URL_EKS") for r in REGIONS}
    # ECS (moto): an endpoints file written before ECS joined the world has no URL for it.
    ecs = ({r: client("ecs", r, "AWS_ENDPOINT_URL_ECS") for r in REGIONS}
           if os.environ.get("AWS_ENDPOINT_URL_ECS") else None)
    gcs_url = endpoint("DRCTL_GCS_ENDPOINT")

    zone_id = ensure_zone(r53, zone_name)

    # orders: an Aurora global cluster (writer in HOME, secondaries in the
    # other two regions), an EKS managed node group and an ECS service per region.
    orders_members = [(HOME, n("orders-usw2")), (STANDBY, n("orders-use1")), (THIRD, n("orders-euw1"))]
    if args.reset_databases:
        reset_databases(rds, n)
        reset_backup_clusters(rds, [n("archive-ledger")])
        reset_global_cluster(rds, n("orders-global"), orders_members)

    dbs = {}
    # (app, home, {replica region: replica id}, lag)
    worlds = (("payments", HOME, {STANDBY: n("payments-db-use1"), THIRD: n("payments-db-euw1")}, args.lag_payments),
              ("ledger", HOME, {STANDBY: n("ledger-db-use1")}, args.lag_ledger),
              ("checkout", STANDBY, {HOME: n("checkout-db-usw2"), THIRD: n("checkout-db-euw1")}, args.lag_checkout),
              # storefront's AWS half (plans/gcp/storefront.toml, on both clouds).
              ("storefront", HOME, {STANDBY: n("storefront-db-use1")}, args.lag_storefront),
              # catalog (plans/catalog.toml): its Kubernetes workloads are ensure_kube's.
              ("catalog", HOME, {STANDBY: n("catalog-db-use1")}, 2))
    for app, home, replica_ids, lag in worlds:
        primary = ensure_primary(rds[home], n(f"{app}-db"))
        replicas = {}
        for region, replica_id in replica_ids.items():
            replica = ensure_replica(rds[region], replica_id, primary, home, lag)
            # The two-region world's replicas keep their hours of points; the
            # others get the last 15 minutes, and the lag publisher goes on
            # from there. Every point is a row of LocalStack's CloudWatch
            # store, which every GetMetricData reads (a test suite seeds a
            # world per test).
            # A suffixed world is a test's: the lag publisher goes on for
            # it, and hours of points per replica would only grow
            # LocalStack's CloudWatch table that every lag read scans.
            ahead = LAG_AHEAD_MIN if region == STANDBY and home == HOME and not args.suffix else 0
            put_lag(cw[region], replica["DBInstanceIdentifier"], lag, ahead)
            # The lag publisher (lag_publisher.py) goes on with the same value.
            rds[region].add_tags_to_resource(
                ResourceName=replica["DBInstanceArn"],
                Tags=[{"Key": "drctl:replica-lag", "Value": f"{lag:g}"}])
            replicas[region] = {"id": replica["DBInstanceIdentifier"], "region": region, "arn": replica["DBInstanceArn"],
                                "endpoint": replica["Endpoint"]["Address"], "port": replica["Endpoint"]["Port"],
                                "source": replica.get("ReadReplicaSourceDBInstanceIdentifier")}
        dbs[app] = {
            "primary": {"id": primary["DBInstanceIdentifier"], "region": home, "arn": primary["DBInstanceArn"],
                        "endpoint": primary["Endpoint"]["Address"], "port": primary["Endpoint"]["Port"]},
            "replicas": replicas,
            "replica_lag_seconds": lag,
        }
        if STANDBY in replicas:  # the shape of the two-region world, kept for its readers
            dbs[app]["replica"] = replicas[STANDBY]

    # archive (plans/archive.toml): a primary in HOME whose standby in
    # STANDBY is its replicated backups and a copied snapshot, no instance.
    archive = ensure_primary(rds[HOME], n("archive-db"))
    for region in (HOME, STANDBY):
        ensure_subnet_group(rds[region], ec2[region], f"archive-private-{TAGS[region]}")
        ensure_parameter_group(rds[region], "archive-pg16", "postgres16")
    ensure_backups_standby(rds[HOME], rds[STANDBY], archive, n("archive-db-nightly"))
    for region in (HOME, STANDBY):
        ensure_cluster_parameter_group(rds[region], "archive-apg16", "aurora-postgresql16")
    ledger = ensure_cluster_snapshots_standby(rds[HOME], rds[STANDBY], n("archive-ledger"),
                                              n("archive-ledger-nightly"), "archive-apg16")
    dbs["archive"] = {
        "primary": {"id": archive["DBInstanceIdentifier"], "region": HOME, "arn": archive["DBInstanceArn"],
                    "endpoint": archive["Endpoint"]["Address"], "port": archive["Endpoint"]["Port"]},
        "replicas": {},
        "backups_in": [STANDBY],
        "ledger": {"id": ledger["DBClusterIdentifier"], "region": HOME, "arn": ledger["DBClusterArn"],
                   "endpoint": ledger["Endpoint"], "snapshots_in": [STANDBY]},
    }

    aurora = {"orders": ensure_global_cluster(
        rds, cw, n("orders-global"), orders_members, args.lag_orders,
        0 if args.suffix else LAG_AHEAD_MIN)}
    aurora["orders"]["lag_seconds"] = args.lag_orders
    node_groups = {}
    for region, (mn, des, mx) in ((HOME, (2, 3, 6)), (STANDBY, (0, 0, 6)), (THIRD, (0, 0, 6))):
        tag = TAGS[region]
        node_groups[n(f"orders-nodes-{tag}")] = ensure_node_group(
            eks[region], n(f"orders-eks-{tag}"), n(f"orders-nodes-{tag}"), mn, des, mx)
    # catalog's EKS node group per region (its workloads run on it).
    for region, (mn, des, mx) in ((HOME, (2, 3, 6)), (STANDBY, (0, 0, 6))):
        tag = TAGS[region]
        node_groups[n(f"catalog-nodes-{tag}")] = ensure_node_group(
            eks[region], n(f"catalog-eks-{tag}"), n(f"catalog-nodes-{tag}"), mn, des, mx)
    # orders' workers on ECS Fargate: the same service in a cluster per
    # region, 4 tasks where orders serves, 1 where it stands by.
    ecs_services = None
    if ecs is not None:
        ecs_services = {}
        for region, desired in ((HOME, 4), (STANDBY, 1), (THIRD, 1)):
            cluster = n(f"orders-ecs-{TAGS[region]}")
            ecs_services[cluster] = ensure_ecs_service(
                ecs[region], ec2[region], cluster, n("orders-workers"), n("orders-workers"), desired)
    else:
        say("ecs", "-", "skipped (AWS_ENDPOINT_URL_ECS unset: rerun localstack/up)")

    groups = {}
    # (min, desired, max) by group base name, per region
    caps = {
        HOME: {"payments-api": (2, 4, 8), "ledger-workers": (1, 2, 4), "checkout-web": (0, 1, 6),
               "storefront-web": (2, 2, 4), "archive-api": (1, 2, 4)},
        STANDBY: {"payments-api": (0, 0, 8), "ledger-workers": (0, 0, 4), "checkout-web": (2, 3, 6),
                  "storefront-web": (0, 0, 4), "archive-api": (0, 0, 4)},
        THIRD: {"payments-api": (0, 0, 8), "checkout-web": (0, 1, 6)},
    }
    for region in REGIONS:
        tag = TAGS[region]
        tmpl = ensure_template(ec2[region], n(f"drctl-reference-{tag}"))
        for base, (mn, des, mx) in caps[region].items():
            name = n(f"{base}-{tag}")
            ensure_asg(asg[region], name, tmpl, f"{region}a", mn, des, mx)
            groups[name] = {"region": region, "min": mn, "desired": des, "max": mx, "launch_template": tmpl}

    pay_ep = dbs["payments"]["primary"]["endpoint"]
    records = [
        a_rec(d("api-usw2"), "192.0.2.10"),
        a_rec(d("api-use1"), "192.0.2.20"),
        a_rec(d("ledger-usw2"), "192.0.2.30"),
        a_rec(d("ledger-use1"), "192.0.2.40"),
        a_rec(d("api-euw1"), "192.0.2.50"),
        a_rec(d("checkout-use1"), "192.0.2.60"),
        a_rec(d("checkout-usw2"), "192.0.2.70"),
        a_rec(d("checkout-euw1"), "192.0.2.80"),
        a_rec(d("storefront-usw2"), "192.0.2.90"),
        a_rec(d("storefront-use1"), "192.0.2.91"),
        cname(d("storefront"), d("storefront-usw2")),
        cname(d("api"), d("api-usw2")),
        cname(d("payments-db"), pay_ep),
        cname(d("catalog-db"), dbs["catalog"]["primary"]["endpoint"]),
        cname(d("archive-db"), dbs["archive"]["primary"]["endpoint"]),
        cname(d("archive-ledger"), dbs["archive"]["ledger"]["endpoint"]),
        cname(d("orders-db"), aurora["orders"]["members"][HOME]["writer_endpoint"]),
        cname(d("ledger"), d("ledger-usw2"), SetIdentifier=HOME, Weight=100),
        cname(d("ledger"), d("ledger-use1"), SetIdentifier=STANDBY, Weight=0),
    ]
    upsert_records(r53, zone_id, records)

    s3_bucket = n("drctl-evidence-use1")
    lock = ensure_s3_bucket(s3r[STANDBY], s3_bucket)
    euw1_bucket = n("drctl-evidence-euw1")
    euw1_lock = ensure_s3_bucket(s3r[THIRD], euw1_bucket)
    # checkout's data-plane controls: one bucket per region, in that region.
    # The objects, health checks and failover records are `drctl dns prepare
    # --plan checkout`'s to make (the one place that knows their shape).
    controls = {}
    for region in REGIONS:
        controls[region] = n(f"drctl-control-{TAGS[region]}")
        ensure_s3_bucket(s3r[region], controls[region], object_lock=False)
    gcs_bucket = n("drctl-evidence")
    ensure_gcs_bucket(gcs_url, gcs_bucket)
    # Cloud SQL and Cloud Run in gcp_emu.py (an endpoints file from before it has no URL).
    cloud_sql = cloud_run = cloud_dns = None
    if os.environ.get("DRCTL_GCP_ENDPOINT"):
        cloud_sql = ensure_cloud_sql(os.environ["DRCTL_GCP_ENDPOINT"], n("orders-sql"),
                                     n("orders-sql-use4"), 1.0)
        cloud_run = ensure_cloud_run(os.environ["DRCTL_GCP_ENDPOINT"], n("orders-api"), 3, 0)
        cloud_dns = ensure_cloud_dns(os.environ["DRCTL_GCP_ENDPOINT"], n("orders-zone"),
                                     "orders.gcp.example.com.", "orders-api-usc1.example.com.")
        # storefront's GCP half (plans/gcp/storefront.toml).
        cloud_sql = {"orders": cloud_sql,
                     "storefront": ensure_cloud_sql(os.environ["DRCTL_GCP_ENDPOINT"], n("catalogue-sql"),
                                                    n("catalogue-sql-use4"), 1.5)}
        cloud_sql["archive"] = ensure_sql_backups(os.environ["DRCTL_GCP_ENDPOINT"], n("archive-sql"),
                                                  n("archive-sql-use4"), args.reset_databases)
        cloud_run = {"orders": cloud_run,
                     "storefront": ensure_cloud_run(os.environ["DRCTL_GCP_ENDPOINT"], n("storefront-api"), 2, 0)}
    else:
        say("cloud-sql", "-", "skipped (DRCTL_GCP_ENDPOINT unset: rerun localstack/up)")
    # The orders workers' managed instance groups, in the same emulator.
    instance_groups = None
    if os.environ.get("DRCTL_GCP_ENDPOINT"):
        instance_groups = ensure_instance_groups(os.environ["DRCTL_GCP_ENDPOINT"],
                                                 n("orders-workers"), n("orders-workers-use4"))

    # catalog's workloads (plans/catalog.toml) only when asked: every namespace's pods take
    # room on the world's fake nodes, and a test suite seeds a world per test.
    kubernetes = ensure_kube(n("catalog")) if args.kubernetes else None

    if args.json:
        return {
            "suffix": sfx or None,
            "kubernetes": kubernetes,
            "zone": {"name": zone_name, "id": zone_id},
            "records": [{k: r[k] for k in ("Name", "Type", "SetIdentifier", "Weight") if k in r}
                        | {"value": r["ResourceRecords"][0]["Value"]} for r in records],
            "databases": dbs,
            "auto_scaling_groups": groups,
            "aurora_global": aurora,
            "eks_node_groups": node_groups,
            "ecs_services": ecs_services,
            "cloud_sql": cloud_sql,
            "instance_groups": instance_groups,
            "cloud_run": cloud_run,
            "cloud_dns": cloud_dns,
            "buckets": {"s3": {"name": s3_bucket, "region": STANDBY, "versioning": True, "object_lock": lock},
                        "s3_euw1": {"name": euw1_bucket, "region": THIRD, "versioning": True, "object_lock": euw1_lock},
                        "controls": controls,
                        "gcs": {"name": gcs_bucket}},
            "endpoints": {k: os.environ[k] for k in sorted(os.environ)
                          if k.startswith("AWS_ENDPOINT_URL_") or k in ("DRCTL_GCS_ENDPOINT", "DRCTL_GCP_ENDPOINT")},
        }
    return None


if __name__ == "__main__":
    main()
