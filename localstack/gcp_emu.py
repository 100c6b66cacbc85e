"""Google Cloud for the emulator world: the REST subset drctl calls.

Google ships no emulator for the Cloud SQL Admin API or Cloud Monitoring, and
drctl's GCP adapters (the official `google-cloud-*` crates) need something on
loopback that answers as Google does. This process is that, kept small and
honest (localstack/README.md, "Google Cloud (gcp_emu.py)", says what it models
and what it does not):

* Cloud SQL Admin v1 (`/v1/projects/{p}/...`): instances get and list,
  `promoteReplica` (with `failover=true` for an Enterprise Plus DR replica),
  `switchover`, `clone` (with `cloneContext.pointInTime`; a read replica
  is refused: replicas keep no backups, which a clone is made from),
  `delete`,
  `getLatestRecoveryTime`, operations get and list. Every write answers an
  Operation at once (`PENDING`), which turns `RUNNING` and then `DONE` after
  DRCTL_GCP_OP_SECONDS (2 s); its effect on the instances lands when it is
  `DONE`, or it ends `DONE` with `error` when a failure was armed for it.
* Cloud Monitoring v3 `projects/{p}/timeSeries` list, for two metrics, one
  per request (Monitoring's rule):
  `cloudsql.googleapis.com/database/replication/replica_lag` (a gauge, in
  seconds: what the replica received and has not applied) and
  `cloudsql.googleapis.com/database/replication/network_lag` (a gauge, in
  seconds: the time from the primary's log to the replica's receiving
  thread; Google's list of Cloud SQL metrics documents it for replicas, and
  a replica whose network lag was never set publishes none, as an engine
  that does not report it) of each read replica, `resource.labels.database_id =
  "{project}:{instance}"`. A replica's lag is sampled every 60 s from when it
  was set; a primary publishes none.
* Errors as Google sends them: the HTTP status and
  `{"error": {"code", "message", "errors": [...], "status"}}`.
* Compute Engine v1's regional managed instance groups, autoscalers and
  operations: its own module, localstack/gcp_emu_compute.py.
* Cloud DNS v1's managed zones, record sets and changes (a change's
  deletions a compare-and-swap): its own module, localstack/gcp_emu_dns.py.
* The old primary's side of a move, an operation on it as Cloud SQL runs
  it: `RECONFIGURE_OLD_PRIMARY`, started when a promotion is DONE (after a
  DR failover it makes the former primary a read replica of the new one),
  and `SWITCHOVER_TO_REPLICA`, started with a switchover.
* An admin API under `/emu/` for the world and the tests: seed instances,
  set a lag, arm a failing operation, set the operations' duration, take an
  instance's zone down (its operations stand still until it is back), read
  the calls made, reset.

Response shapes follow recorded real traffic and the APIs' discovery
documents (localstack/contract/, checked by localstack/test_gcp_emu.py).
Python 3 standard library only. Started by `localstack/up`, stopped by
`localstack/down`; DRCTL_GCP_HOST and DRCTL_GCP_PORT (127.0.0.1:4590).
"""
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import gcp_emu_compute
import gcp_emu_dns  # Cloud DNS v1: zones, record sets, changes
import gcp_emu_run  # Cloud Run Admin v2: its model and routes

HOST = os.environ.get("DRCTL_GCP_HOST", "127.0.0.1")
PORT = int(os.environ.get("DRCTL_GCP_PORT", "4590"))
LAG_METRIC = "cloudsql.googleapis.com/database/replication/replica_lag"
NETWORK_LAG_METRIC = "cloudsql.googleapis.com/database/replication/network_lag"
SAMPLE_SECONDS = 60.0
# How far behind now the latest recovery time is (transaction logs shipped).
RECOVERY_DELAY = 1.0

STATUS_OF = {
    400: "FAILED_PRECONDITION",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}


def rfc3339(t):
    return (
        datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        + "Z"
    )


def parse_time(text):
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 takes up to 6 fraction digits; Google sends up to 9.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m and m.group(2):
        text = m.group(1) + m.group(2)[:7] + m.group(3)
    return datetime.fromisoformat(text).timestamp()


def bare(name):
    """An instance's name from a reference to it (`project:instance` or
    `instance`: Cloud SQL answers both in `masterInstanceName`)."""
    return name.rsplit(":", 1)[-1] if name else name


class ApiError(Exception):
    def __init__(self, code, message, reason="invalid", status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.status = status or STATUS_OF.get(code, "UNKNOWN")

    def body(self):
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [
                    {"domain": "global", "reason": self.reason, "message": self.message}
                ],
                "status": self.status,
            }
        }


class World:
    """Every instance, operation and lag of the emulator, under one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self.op_seconds = float(os.environ.get("DRCTL_GCP_OP_SECONDS", "2"))
        self.reset()

    def reset(self):
        with self.lock:
            self.instances = {}  # (project, name) -> dict
            self.operations = {}  # (project, op name) -> dict
            self.operations_page = 0  # operations.list's page size (0: one page)
            self.lags = {}  # (project, name) -> (set at, seconds)
            self.network_lags = {}  # (project, name) -> (set at, seconds): network_lag
            self.failures = {}  # (project, name, operationType) -> message
            # Instances whose zone is down, by (project, name): operations
            # on them do not move on until it is back (/emu/outage).
            self.down = set()
            # Write endpoints (`replicationCluster.psaWriteEndpoint`): the
            # members of each replication cluster that carry one, by
            # (project, name) -> the endpoint's DNS name. Kept apart from
            # the instances' dicts, which the operations' effects rewrite.
            self.write_endpoints = {}
            # Backups (the v1 `Backup` resource), by (project, uid): an
            # instance's backups, each kept in a location of its own.
            self.backups = {}
            self.calls = []

    # ------------------------------------------------------------ instances
    def seed(self, spec):
        """Puts an instance in the world as it is (no operation)."""
        with self.lock:
            project, name = spec["project"], spec["name"]
            region = spec.get("region", "us-central1")
            master = spec.get("masterInstanceName")
            now = time.time()
            n = len(self.instances) + 1
            inst = {
                "kind": "sql#instance",
                "name": name,
                "project": project,
                "region": region,
                "databaseVersion": spec.get("databaseVersion", "POSTGRES_16"),
                "backendType": "SECOND_GEN",
                "state": spec.get("state", "RUNNABLE"),
                "connectionName": f"{project}:{region}:{name}",
                "createTime": rfc3339(now - 86400),
                "etag": uuid.uuid4().hex[:12] + "A=",
                "gceZone": f"{region}-a",
                "instanceType": "READ_REPLICA_INSTANCE" if master else "CLOUD_SQL_INSTANCE",
                "ipAddresses": [
                    {"ipAddress": spec.get("ip", f"10.{n // 250}.{n % 250}.10"), "type": "PRIMARY"}
                ],
                "dnsName": f"{uuid.uuid5(uuid.NAMESPACE_DNS, project + name).hex[:12]}.{region}.sql.goog.",
                "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{name}",
                "settings": {
                    "kind": "sql#settings",
                    "tier": spec.get("tier", "db-perf-optimized-N-2"),
                    "edition": spec.get("edition", "ENTERPRISE_PLUS"),
                    "availabilityType": "REGIONAL",
                    "activationPolicy": "ALWAYS",
                    "settingsVersion": "1",
                    "backupConfiguration": {
                        "kind": "sql#backupConfiguration",
                        "enabled": True,
                        "pointInTimeRecoveryEnabled": bool(spec.get("pitr", True)),
                        "transactionLogRetentionDays": 7,
                    },
                },
            }
            if master:
                m = self.instances.get((project, master))
                if m is None:
                    raise ApiError(404, f"The Cloud SQL instance {master} does not exist.",
                                   "instanceDoesNotExist")
                inst["masterInstanceName"] = master
                inst["replicaConfiguration"] = {
                    "kind": "sql#replicaConfiguration",
                    "failoverTarget": False,
                }
                names = m.setdefault("replicaNames", [])
                if name not in names:
                    names.append(name)
                if spec.get("drReplica"):
                    m["replicationCluster"] = {"failoverDrReplicaName": name, "drReplica": False}
                    inst["replicationCluster"] = {"drReplica": True}
                    self._join(project, master, name)
                self.lags[(project, name)] = (now, float(spec.get("lag", 1.0)))
            self.instances[(project, name)] = inst
            if spec.get("writeEndpoint") and not master:
                self.give_write_endpoint(project, name)
            return inst

    # ------------------------------------------------------------ write endpoints
    def give_write_endpoint(self, project, name):
        """A write endpoint for primary `name`'s replication cluster (its DR
        replica's too): what Cloud SQL makes for an Enterprise Plus
        instance on private services access. Its name has Google's
        documented form, `<id>.<id>.global.sql-psa.goog.`."""
        inst = self.instance(project, name)
        if inst.get("masterInstanceName"):
            raise ApiError(400, "A write endpoint belongs to a primary's cluster.", "invalid")
        h = uuid.uuid5(uuid.NAMESPACE_DNS, f"{project}/{name}").hex
        self.write_endpoints[(project, name)] = f"{h[:13]}.{h[13:26]}.global.sql-psa.goog."
        dr = inst.get("replicationCluster", {}).get("failoverDrReplicaName")
        if dr:
            self._join(project, name, dr)
        return self.write_endpoints[(project, name)]

    def _join(self, project, primary, replica):
        """`replica`, now `primary`'s DR replica, shares its cluster's write
        endpoint; any other member but the primary leaves it."""
        ep = self.write_endpoints.get((project, primary))
        if ep is None:
            return
        for key in [k for k, v in self.write_endpoints.items() if v == ep]:
            if key not in ((project, primary), (project, replica)):
                del self.write_endpoints[key]
        self.write_endpoints[(project, replica)] = ep

    def _leave(self, project, name):
        self.write_endpoints.pop((project, name), None)

    def shown_instance(self, key, inst):
        """An instance as the API answers it: with its cluster's write
        endpoint in `replicationCluster.psaWriteEndpoint`, where the crate's
        model (google-cloud-sql-v1 `ReplicationCluster`) puts it."""
        ep = self.write_endpoints.get(key)
        if ep is None:
            return inst
        out = dict(inst)
        out["replicationCluster"] = dict(inst.get("replicationCluster") or {}, psaWriteEndpoint=ep)
        return out

    def write_endpoint_answers(self):
        """Each write endpoint and the primary it resolves to (the member
        that is a primary; none while none is), for the world's DNS."""
        out = {}
        for (project, name), ep in sorted(self.write_endpoints.items()):
            inst = self.instances.get((project, name))
            out.setdefault(ep, {"name": ep, "project": project, "primary": None, "ip": None})
            if inst and not inst.get("masterInstanceName"):
                out[ep].update(primary=name, ip=inst["ipAddresses"][0]["ipAddress"])
        return list(out.values())

    def instance(self, project, name):
        inst = self.instances.get((project, name))
        if inst is None:
            raise ApiError(404, "The Cloud SQL instance does not exist.", "instanceDoesNotExist")
        return inst

    def set_lag(self, project, name, seconds, at=None, metric=LAG_METRIC):
        with self.lock:
            self.instance(project, name)
            lags = self.network_lags if metric == NETWORK_LAG_METRIC else self.lags
            lags[(project, name)] = (time.time() if at is None else at, float(seconds))

    # ------------------------------------------------------------ operations
    def start(self, project, target, op_type, effect):
        """An operation on `target`: answered PENDING now, its effect applied
        when it is DONE (or an error, when one was armed for it)."""
        now = time.time()
        name = str(uuid.uuid4())
        op = {
            "kind": "sql#operation",
            "name": name,
            "operationType": op_type,
            "status": "PENDING",
            "insertTime": rfc3339(now),
            "targetId": target,
            "targetProject": project,
            "targetLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{target}",
            "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/operations/{name}",
            "user": "drctl@emulator.iam.gserviceaccount.com",
            "_t0": now,
            "_effect": effect,
            "_error": self.failures.pop((project, target, op_type), None),
        }
        self.operations[(project, name)] = op
        return op

    def advance(self):
        """Moves every operation on by the clock; applies what is DONE. An
        operation on an instance whose zone is down stays where it is (not
        DONE) until the zone is back, then ends within half an operation's
        time. A list: an effect may start another operation (the old
        primary's side of a promotion)."""
        now = time.time()
        for op in list(self.operations.values()):
            if op["status"] == "DONE":
                continue
            if (op["targetProject"], op["targetId"]) in self.down:
                op["_t0"] = max(op["_t0"], now - self.op_seconds / 2)
            age = now - op["_t0"]
            if age >= self.op_seconds:
                op["status"] = "DONE"
                op.setdefault("startTime", rfc3339(op["_t0"] + min(0.1, self.op_seconds / 4)))
                op["endTime"] = rfc3339(op["_t0"] + self.op_seconds)
                if op["_error"]:
                    op["error"] = {
                        "kind": "sql#operationErrors",
                        "errors": [{"kind": "sql#operationError", "code": "INTERNAL_ERROR",
                                    "message": op["_error"]}],
                    }
                else:
                    op["_effect"]()
            elif age >= self.op_seconds / 4:
                op["status"] = "RUNNING"
                op.setdefault("startTime", rfc3339(op["_t0"] + self.op_seconds / 4))

    def rejoin(self, project, old, new):
        """A former primary becomes a read replica of the new one (not yet
        its designated DR replica): what RECONFIGURE_OLD_PRIMARY does after
        a DR failover."""
        o, n = self.instances.get((project, old)), self.instances.get((project, new))
        if o is None or n is None or o.get("masterInstanceName"):
            return
        o["masterInstanceName"] = new
        o["instanceType"] = "READ_REPLICA_INSTANCE"
        o["replicaConfiguration"] = {"kind": "sql#replicaConfiguration", "failoverTarget": False}
        o["replicationCluster"] = {"drReplica": False}
        n.setdefault("replicaNames", []).append(old)
        self.lags[(project, old)] = (time.time(), 0.0)

    def busy(self, project, name):
        for op in self.operations.values():
            if op["targetProject"] == project and op["targetId"] == name and op["status"] != "DONE":
                raise ApiError(409, "Operation failed because another operation was already in progress.",
                               "operationInProgress", "ABORTED")

    @staticmethod
    def shown(op):
        return {k: v for k, v in op.items() if not k.startswith("_")}

    # ------------------------------------------------------------ the calls
    def promote(self, project, name, failover):
        inst = self.instance(project, name)
        master = bare(inst.get("masterInstanceName"))
        if not master:
            raise ApiError(400, "The instance is not a read replica.", "notAReplica")
        if failover and inst.get("replicationCluster", {}).get("drReplica") is not True:
            raise ApiError(400, "The replica is not the primary's DR replica: failover needs one.",
                           "notADrReplica")
        self.busy(project, name)

        def effect():
            self._detach(project, name)
            old = self.instances.get((project, master))
            # A DR failover takes the cluster's write endpoint to the
            # promoted replica (the old primary is no member until it is a
            # DR replica again); a plain promotion leaves the cluster, and
            # the endpoint stays with the old primary.
            self._leave(project, master if failover else name)
            if failover:
                # The DR pair moves with the write: the promoted replica now
                # names no DR replica (the old primary is not one yet).
                new = self.instances[(project, name)]
                new["replicationCluster"] = {"drReplica": False}
                if old is not None:
                    old.pop("replicationCluster", None)
                    for r in list(old.get("replicaNames", [])):
                        self._move_replica(project, r, name)
            if old is not None:
                # The promotion's effect on the old primary is an operation
                # of its own, started once the replica's is done
                # (RECONFIGURE_OLD_PRIMARY, "executed asynchronously from the
                # promote replica operation": sqladmin's discovery document):
                # after a DR failover it makes the former primary a read
                # replica of the new one, once its zone answers; after a
                # plain promotion the old primary stays a primary.
                def reconfigured():
                    if failover:
                        self.rejoin(project, master, name)

                self.start(project, master, "RECONFIGURE_OLD_PRIMARY", reconfigured)

        return self.start(project, name, "PROMOTE_REPLICA", effect)

    def _detach(self, project, name):
        inst = self.instances[(project, name)]
        master = bare(inst.pop("masterInstanceName", None))
        inst.pop("replicaConfiguration", None)
        inst["instanceType"] = "CLOUD_SQL_INSTANCE"
        self.lags.pop((project, name), None)
        self.network_lags.pop((project, name), None)
        if master and (project, master) in self.instances:
            m = self.instances[(project, master)]
            m["replicaNames"] = [r for r in m.get("replicaNames", []) if r != name]
            if not m["replicaNames"]:
                m.pop("replicaNames")

    def _move_replica(self, project, replica, to):
        r = self.instances.get((project, replica))
        if r is None:
            return
        old = bare(r.get("masterInstanceName"))
        if old and (project, old) in self.instances:
            m = self.instances[(project, old)]
            m["replicaNames"] = [x for x in m.get("replicaNames", []) if x != replica]
            if not m["replicaNames"]:
                m.pop("replicaNames")
        r["masterInstanceName"] = to
        names = self.instances[(project, to)].setdefault("replicaNames", [])
        if replica not in names:
            names.append(replica)

    def designate_dr(self, project, name, replica):
        """`instances.patch` of `replicationCluster.failoverDrReplicaName`:
        `replica`, a read replica of `name`, becomes its DR replica."""
        self.instance(project, name)
        r = self.instances.get((project, replica))
        if r is None or bare(r.get("masterInstanceName")) != name:
            raise ApiError(400, f"{replica} is not a read replica of {name}.", "invalid")
        self.busy(project, name)

        def effect():
            p = self.instances[(project, name)]
            self._join(project, name, replica)
            p.setdefault("replicationCluster", {})["failoverDrReplicaName"] = replica
            p["replicationCluster"]["drReplica"] = False
            for x in p.get("replicaNames", []):
                other = self.instances.get((project, x))
                if other is not None:
                    other.setdefault("replicationCluster", {})["drReplica"] = x == replica

        return self.start(project, name, "UPDATE", effect)

    # The backupConfiguration fields this world keeps (Cloud SQL's
    # reference of BackupConfiguration); a patch replaces the configuration
    # it is sent whole, as Google's does for a nested message.
    _BACKUP_FIELDS = {"kind", "enabled", "location", "pointInTimeRecoveryEnabled",
                      "transactionLogRetentionDays", "startTime", "binaryLogEnabled",
                      "backupRetentionSettings", "transactionalLogStorageState", "backupTier"}

    def configure_backups(self, project, name, config):
        """`instances.patch` of `settings.backupConfiguration`: where the
        instance's backups are kept from now on (`location`, a region or a
        multi-region), and whether it takes them."""
        inst = self.instance(project, name)
        if inst.get("masterInstanceName"):
            raise ApiError(400, "The requested operation is not valid for a replica instance.",
                           "operationNotSupportedForReplica")
        unknown = set(config) - self._BACKUP_FIELDS
        if unknown:
            raise ApiError(400, f"Invalid JSON payload: unknown field(s) {sorted(unknown)}.",
                           "invalid", "INVALID_ARGUMENT")
        self.busy(project, name)

        def effect():
            kept = {"kind": "sql#backupConfiguration"}
            kept.update(config)
            self.instances[(project, name)]["settings"]["backupConfiguration"] = kept

        return self.start(project, name, "UPDATE", effect)

    def switchover(self, project, name):
        inst = self.instance(project, name)
        master = bare(inst.get("masterInstanceName"))
        if not master or inst.get("replicationCluster", {}).get("drReplica") is not True:
            raise ApiError(400, "Switchover is only supported on the primary's DR replica.",
                           "notADrReplica")
        self.busy(project, name)

        def effect():
            # Roles swap with no data lost: the old primary becomes the new
            # primary's DR replica, its other replicas follow the new one.
            old = self.instances[(project, master)]
            self._detach(project, name)
            new = self.instances[(project, name)]
            for r in list(old.get("replicaNames", [])):
                self._move_replica(project, r, name)
            # As recorded on Google Cloud: `project:instance` after a switchover.
            old["masterInstanceName"] = f"{project}:{name}"
            old["instanceType"] = "READ_REPLICA_INSTANCE"
            old["replicaConfiguration"] = {"kind": "sql#replicaConfiguration", "failoverTarget": False}
            old["replicationCluster"] = {"drReplica": True}
            new["replicationCluster"] = {"failoverDrReplicaName": master, "drReplica": False}
            new.setdefault("replicaNames", []).append(master)
            self.lags[(project, master)] = (time.time(), 0.0)

        op = self.start(project, name, "SWITCHOVER", effect)
        # The old primary's part, an operation on it that runs as part of the
        # switchover (SWITCHOVER_TO_REPLICA: sqladmin's discovery document);
        # the roles swap when the switchover is DONE, as recorded.
        self.start(project, master, "SWITCHOVER_TO_REPLICA", lambda: None)
        return op

    def recovery_window(self, project, name):
        inst = self.instance(project, name)
        if not inst["settings"]["backupConfiguration"].get("pointInTimeRecoveryEnabled"):
            raise ApiError(400, "Point-in-time recovery is not enabled for the instance.",
                           "pitrNotEnabled")
        earliest = parse_time(inst["createTime"])
        return earliest, time.time() - RECOVERY_DELAY

    def clone(self, project, name, ctx):
        src = self.instance(project, name)
        if src.get("masterInstanceName"):
            # Replicas keep no backups (backupConfiguration cannot be
            # enabled on one), and a clone is made from the source's
            # backup and logs: Cloud SQL refuses it.
            raise ApiError(400, "The requested operation is not valid for a replica instance.",
                           "operationNotSupportedForReplica")
        dest = (ctx or {}).get("destinationInstanceName")
        if not dest:
            raise ApiError(400, "Invalid request: destinationInstanceName is required.", "invalid",
                           "INVALID_ARGUMENT")
        if (project, dest) in self.instances:
            raise ApiError(409, f"The Cloud SQL instance {dest} already exists.",
                           "instanceAlreadyExists")
        pit = ctx.get("pointInTime")
        if pit is not None:
            earliest, latest = self.recovery_window(project, name)
            at = parse_time(pit)
            if at > latest or at < earliest:
                raise ApiError(400, f"Invalid request: the point in time {pit} is outside the "
                               f"instance's recovery window ({rfc3339(earliest)} to {rfc3339(latest)}).",
                               "invalid", "INVALID_ARGUMENT")
        # The name is taken at once (a second clone of it is refused).
        self.instances[(project, dest)] = None

        def effect():
            self.instances.pop((project, dest), None)
            self.seed({"project": project, "name": dest, "region": src["region"],
                       "databaseVersion": src["databaseVersion"],
                       "edition": src["settings"]["edition"], "tier": src["settings"]["tier"]})

        return self.start(project, dest, "CLONE", effect)

    # ------------------------------------------------------------ backups
    # Modelled on Google's reference of the v1 `Backup` resource
    # (sql/docs/postgres/admin-api/rest/v1/Backups), `backups.list`
    # (`filter` on `instance`), `backups.insertBackup` (an on-demand
    # backup, stored in `location` when given, else in the instance's
    # region) and `instances.restoreBackup` with `backup` and
    # `restoreInstanceSettings` ("You can use this field to restore new
    # instances only"): a new instance in the settings' region, made from
    # the backup and the settings it kept, its name refused when taken.
    def backup(self, project, spec, at=None):
        """A backup of `spec["instance"]`, taken now (or `at`, seconds since
        the epoch: a backup of the past, for a test); ENQUEUED until its
        operation is DONE, SUCCESSFUL after. Returns the operation and the
        backup."""
        inst = self.instance(project, spec["instance"])
        if inst.get("masterInstanceName"):
            raise ApiError(400, "The requested operation is not valid for a replica instance.",
                           "operationNotSupportedForReplica")
        uid = str(int((at or time.time()) * 1000))
        while (project, uid) in self.backups:
            uid = str(int(uid) + 1)
        taken = at or time.time()
        b = {
            "kind": "sql#backup",
            "name": f"projects/{project}/backups/{uid}",
            "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/backups/{uid}",
            "type": spec.get("type", "ON_DEMAND"),
            "description": spec.get("description", ""),
            "instance": inst["name"],
            # The request's location, else the instance's backup location
            # (`backupConfiguration.location`: "the location of the backup"
            # for automated and on-demand ones alike), else its region.
            "location": (spec.get("location")
                         or inst["settings"]["backupConfiguration"].get("location")
                         or inst["region"]),
            # A backup takes its time: every write before startTime is in
            # it, none after endTime (Google's reference of the field).
            "backupInterval": {"startTime": rfc3339(taken - 60), "endTime": rfc3339(taken)},
            "state": "ENQUEUED" if at is None else "SUCCESSFUL",
            "databaseVersion": inst["databaseVersion"],
            "backupKind": "SNAPSHOT",
            "instanceSettings": {"region": inst["region"], "databaseVersion": inst["databaseVersion"],
                                 "settings": {"tier": inst["settings"]["tier"],
                                              "edition": inst["settings"]["edition"]}},
        }
        self.backups[(project, uid)] = b

        def effect():
            b["state"] = "SUCCESSFUL"

        op = self.start(project, inst["name"], "BACKUP_VOLUME", effect)
        if at is not None:
            op["status"] = "DONE"
        return op, b

    def list_backups(self, project, flt):
        """A project's backups, newest first, filtered on `instance="NAME"`
        (the one filter drctl sends)."""
        want = None
        # `instance="NAME"` or `instance:NAME` (the forms of the reference).
        m = re.match(r'^\s*instance\s*[=:]\s*"?([^"\s]+)"?\s*$', flt or "")
        if flt and not m:
            raise ApiError(400, f"Invalid filter: {flt}", "invalid", "INVALID_ARGUMENT")
        if m:
            want = m.group(1)
        found = [b for (p, _), b in self.backups.items()
                 if p == project and (want is None or b["instance"] == want)]
        return sorted(found, key=lambda b: b["backupInterval"]["endTime"], reverse=True)

    def restore_backup(self, project, target, body):
        name = (body or {}).get("backup")
        settings = (body or {}).get("restoreInstanceSettings")
        if not name or not name.startswith(f"projects/{project}/backups/"):
            raise ApiError(400, "Invalid request: backup must be projects/{project}/backups/{uid}.",
                           "invalid", "INVALID_ARGUMENT")
        b = self.backups.get((project, name.rsplit("/", 1)[1]))
        if b is None:
            raise ApiError(404, f"The backup {name} does not exist.", "backupDoesNotExist")
        if b["state"] != "SUCCESSFUL":
            raise ApiError(400, f"The backup {name} is {b['state']}, not SUCCESSFUL.",
                           "invalidBackupState", "FAILED_PRECONDITION")
        if settings is None:
            raise ApiError(400, "This emulator restores into new instances only "
                           "(restoreInstanceSettings).", "invalid", "INVALID_ARGUMENT")
        if (project, target) in self.instances:
            raise ApiError(409, f"The Cloud SQL instance {target} already exists.",
                           "instanceAlreadyExists")
        labels = (settings.get("settings") or {}).get("userLabels") or {}
        for k, v in labels.items():
            if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", k) or not re.match(r"^[a-z0-9_-]{0,63}$", str(v)):
                raise ApiError(400, f"Invalid request: the label {k}={v} is not a valid label.",
                               "invalid", "INVALID_ARGUMENT")
        kept = b["instanceSettings"]
        region = settings.get("region") or kept["region"]
        tier = (settings.get("settings") or {}).get("tier") or kept["settings"]["tier"]
        # The name is taken at once (a second restore into it is refused).
        self.instances[(project, target)] = None

        def effect():
            self.instances.pop((project, target), None)
            inst = self.seed({"project": project, "name": target, "region": region,
                              "databaseVersion": kept["databaseVersion"],
                              "edition": kept["settings"]["edition"], "tier": tier})
            inst["settings"]["userLabels"] = dict((settings.get("settings") or {}).get("userLabels") or {})
            inst["restoredFrom"] = name

        return self.start(project, target, "RESTORE_VOLUME", effect)

    def delete(self, project, name):
        inst = self.instance(project, name)
        self.busy(project, name)

        def effect():
            self.instances.pop((project, name), None)
            self._leave(project, name)
            self.lags.pop((project, name), None)
            self.network_lags.pop((project, name), None)
            master = bare(inst.get("masterInstanceName"))
            m = self.instances.get((project, master)) if master else None
            if m:
                m["replicaNames"] = [r for r in m.get("replicaNames", []) if r != name]
                if not m["replicaNames"]:
                    m.pop("replicaNames")

        return self.start(project, name, "DELETE", effect)

    def lag_series(self, project, query):
        flt = query.get("filter", [""])[0]
        m = re.search(r'metric\.type\s*=\s*"([^"]+)"', flt)
        if not m:
            raise ApiError(400, "Field filter had an invalid value: a metric.type is required.",
                           "badRequest", "INVALID_ARGUMENT")
        try:
            start = parse_time(query["interval.startTime"][0]) if "interval.startTime" in query else None
            end = parse_time(query["interval.endTime"][0])
        except (KeyError, ValueError):
            raise ApiError(400, "Field interval.endTime had an invalid value.", "badRequest",
                           "INVALID_ARGUMENT")
        metric = m.group(1)
        if metric not in (LAG_METRIC, NETWORK_LAG_METRIC):
            return {}
        lags = self.lags if metric == LAG_METRIC else self.network_lags
        want = re.search(r'resource\.labels\.database_id\s*=\s*"([^"]+)"', flt)
        series = []
        now = time.time()
        for (p, name), (t0, value) in sorted(lags.items()):
            if p != project or (want and want.group(1) != f"{p}:{name}"):
                continue
            inst = self.instances.get((p, name))
            if not inst or not inst.get("masterInstanceName"):
                continue
            stamps = []
            t = t0
            while t <= min(now, end):
                if start is None or t > start:
                    stamps.append(t)
                t += SAMPLE_SECONDS
            if not stamps:
                continue
            series.append({
                "metric": {"type": metric},
                "resource": {"type": "cloudsql_database",
                             "labels": {"project_id": p, "database_id": f"{p}:{name}",
                                        "region": inst["region"]}},
                "metricKind": "GAUGE",
                "valueType": "DOUBLE",
                "unit": "s",
                "points": [{"interval": {"startTime": rfc3339(s), "endTime": rfc3339(s)},
                            "value": {"doubleValue": value}} for s in reversed(stamps)],
            })
        return {"timeSeries": series, "unit": "s"} if series else {}


WORLD = World()

ROUTES = [
    ("GET", r"^/v1/projects/([^/]+)/instances$", "list_instances"),
    ("GET", r"^/v1/projects/([^/]+)/instances/([^/]+)$", "get_instance"),
    ("DELETE", r"^/v1/projects/([^/]+)/instances/([^/]+)$", "delete_instance"),
    ("PATCH", r"^/v1/projects/([^/]+)/instances/([^/]+)$", "patch_instance"),
    ("POST", r"^/v1/projects/([^/]+)/instances/([^/]+)/promoteReplica$", "promote"),
    ("POST", r"^/v1/projects/([^/]+)/instances/([^/]+)/switchover$", "switchover"),
    ("POST", r"^/v1/projects/([^/]+)/instances/([^/]+)/clone$", "clone"),
    ("GET", r"^/v1/projects/([^/]+)/instances/([^/]+)/getLatestRecoveryTime$", "recovery"),
    ("POST", r"^/v1/projects/([^/]+)/instances/([^/]+)/restoreBackup$", "restore_backup"),
    ("GET", r"^/v1/projects/([^/]+)/backups$", "list_backups"),
    ("POST", r"^/v1/projects/([^/]+)/backups$", "insert_backup"),
    ("POST", r"^/emu/sql/backups$", "emu_backup"),
    ("GET", r"^/v1/projects/([^/]+)/operations/([^/]+)$", "get_operation"),
    ("GET", r"^/v1/projects/([^/]+)/operations$", "list_operations"),
    ("GET", r"^/v3/projects/([^/]+)/timeSeries$", "time_series"),
    ("GET", r"^/emu/health$", "health"),
    ("GET", r"^/emu/calls$", "emu_calls"),
    ("POST", r"^/emu/reset$", "emu_reset"),
    ("POST", r"^/emu/instances$", "emu_seed"),
    ("POST", r"^/emu/lag$", "emu_lag"),
    ("POST", r"^/emu/fail$", "emu_fail"),
    ("POST", r"^/emu/config$", "emu_config"),
    ("POST", r"^/emu/outage$", "emu_outage"),
    ("GET", r"^/emu/sql/write-endpoints$", "emu_write_endpoints"),
    ("POST", r"^/emu/sql/write-endpoints$", "emu_give_write_endpoint"),
    *gcp_emu_run.ROUTES,
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"

    def log_message(self, fmt, *args):  # one line per call on stdout
        print("%s %s" % (self.address_string(), fmt % args), flush=True)

    def _send(self, code, body):
        data = json.dumps(body, indent=2).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        try:
            return json.loads(self.rfile.read(n) or b"{}")
        except json.JSONDecodeError:
            raise ApiError(400, "Invalid JSON payload received.", "parseError", "INVALID_ARGUMENT")

    def _dispatch(self, method):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        for m, pattern, name in ROUTES:
            match = re.match(pattern, url.path)
            if m == method and match:
                break
        else:
            return self._send(404, ApiError(404, f"The requested URL {url.path} was not found.",
                                            "notFound").body())
        try:
            body = self._body() if method in ("POST", "PATCH") else {}
            with WORLD.lock:
                if not url.path.startswith("/emu/"):
                    # A write's body too: what a test checks was asked
                    # (a clone's cloneContext.pointInTime).
                    WORLD.calls.append({"method": method, "path": url.path,
                                        "query": {k: v[0] for k, v in query.items()},
                                        "body": body})
                WORLD.advance()
                fn = name if callable(name) else getattr(self, name)
                code, out = fn(*match.groups(), query=query, body=body)
        except ApiError as e:
            return self._send(e.code, e.body())
        except (KeyError, TypeError, ValueError) as e:
            return self._send(400, ApiError(400, f"Invalid request: {e}", "invalid",
                                            "INVALID_ARGUMENT").body())
        self._send(code, out)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ---------------------------------------------------------- Cloud SQL
    def list_instances(self, project, query, body):
        items = [WORLD.shown_instance(k, i) for k, i in sorted(WORLD.instances.items())
                 if k[0] == project and i]
        return 200, ({"kind": "sql#instancesList", "items": items} if items
                     else {"kind": "sql#instancesList"})

    def get_instance(self, project, name, query, body):
        inst = WORLD.instances.get((project, name))
        if not inst:
            raise ApiError(404, "The Cloud SQL instance does not exist.", "instanceDoesNotExist")
        return 200, WORLD.shown_instance((project, name), inst)

    def delete_instance(self, project, name, query, body):
        return 200, WORLD.shown(WORLD.delete(project, name))

    def promote(self, project, name, query, body):
        failover = query.get("failover", ["false"])[0].lower() == "true"
        return 200, WORLD.shown(WORLD.promote(project, name, failover))

    def patch_instance(self, project, name, query, body):
        # The two fields drctl patches: the primary's DR replica, and where
        # its backups are kept.
        replica = (body or {}).get("replicationCluster", {}).get("failoverDrReplicaName")
        backups = (body or {}).get("settings", {}).get("backupConfiguration")
        if replica and not backups:
            return 200, WORLD.shown(WORLD.designate_dr(project, name, bare(replica)))
        if backups and not replica:
            return 200, WORLD.shown(WORLD.configure_backups(project, name, backups))
        raise ApiError(400, "Only replicationCluster.failoverDrReplicaName or "
                       "settings.backupConfiguration can be patched here.", "invalid")

    def switchover(self, project, name, query, body):
        return 200, WORLD.shown(WORLD.switchover(project, name))

    def clone(self, project, name, query, body):
        return 200, WORLD.shown(WORLD.clone(project, name, body.get("cloneContext")))

    def restore_backup(self, project, name, query, body):
        return 200, WORLD.shown(WORLD.restore_backup(project, name, body))

    def list_backups(self, project, query, body):
        found = WORLD.list_backups(project, query.get("filter", [""])[0])
        return 200, ({"backups": found} if found else {})

    def insert_backup(self, project, query, body):
        return 200, WORLD.shown(WORLD.backup(project, body)[0])

    def emu_backup(self, query, body):
        """A SUCCESSFUL backup taken at `endTime` (RFC 3339): a backup of the
        past, which the API cannot make."""
        at = parse_time(body["endTime"]) if body.get("endTime") else time.time()
        return 200, WORLD.backup(body["project"], body, at=at)[1]

    def recovery(self, project, name, query, body):
        earliest, latest = WORLD.recovery_window(project, name)
        return 200, {"kind": "sql#getLatestRecoveryTime",
                     "latestRecoveryTime": rfc3339(latest),
                     "earliestRecoveryTime": rfc3339(earliest)}

    def get_operation(self, project, op, query, body):
        o = WORLD.operations.get((project, op))
        if not o:
            raise ApiError(404, f"The Cloud SQL operation {op} does not exist.",
                           "operationDoesNotExist")
        return 200, WORLD.shown(o)

    def list_operations(self, project, query, body):
        want = query.get("instance", [None])[0]
        # Newest first; operations started within one second keep the
        # order they were started in (the dict's).
        ops = [(o["insertTime"], i, WORLD.shown(o))
               for i, ((p, _), o) in enumerate(WORLD.operations.items())
               if p == project and (want is None or o["targetId"] == want)]
        ops = [o for _, _, o in sorted(ops, key=lambda t: (t[0], t[1]), reverse=True)]
        # Pages as Cloud SQL sends them: `maxResults` per page (else the
        # world's page size, 0 for all), `nextPageToken` while more remain.
        size = int(query.get("maxResults", [0])[0] or WORLD.operations_page or 0)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        page = ops[start:start + size] if size else ops[start:]
        out = {"kind": "sql#operationsList"}
        if page:
            out["items"] = page
        if size and start + size < len(ops):
            out["nextPageToken"] = str(start + size)
        return 200, out

    # ---------------------------------------------------------- Monitoring
    def time_series(self, project, query, body):
        return 200, WORLD.lag_series(project, query)

    # ---------------------------------------------------------- admin
    def health(self, query, body):
        return 200, {"ok": True, "instances": sum(1 for i in WORLD.instances.values() if i)}

    def emu_calls(self, query, body):
        return 200, {"calls": WORLD.calls}

    def emu_reset(self, query, body):
        WORLD.reset()
        gcp_emu_run.RUN.reset()
        return 200, {}

    def emu_seed(self, query, body):
        return 200, WORLD.seed(body)

    def emu_lag(self, query, body):
        at = time.time() - float(body.get("ago", 0))
        metric = NETWORK_LAG_METRIC if body.get("metric") == "network_lag" else LAG_METRIC
        WORLD.set_lag(body["project"], body["name"], body["seconds"], at, metric)
        return 200, {}

    def emu_fail(self, query, body):
        WORLD.failures[(body["project"], body["name"], body["operationType"])] = body.get(
            "message", "An internal error has occurred.")
        return 200, {}

    def emu_outage(self, query, body):
        """An instance's zone down (`down`: true) or back: its operations
        stand still meanwhile. Per instance, so that tests sharing the
        world do not stop each other's."""
        key = (body["project"], body["name"])
        if body.get("down", True):
            WORLD.down.add(key)
        else:
            WORLD.down.discard(key)
        return 200, {"down": sorted(f"{p}/{n}" for p, n in WORLD.down)}

    def emu_write_endpoints(self, query, body):
        """Every write endpoint and the primary's address it resolves to
        (read by the world's DNS, dnsplane.py)."""
        return 200, {"endpoints": WORLD.write_endpoint_answers()}

    def emu_give_write_endpoint(self, query, body):
        """A write endpoint for a primary's cluster (its DR replica's too)."""
        return 200, {"name": WORLD.give_write_endpoint(body["project"], body["name"])}

    def emu_config(self, query, body):
        if "opSeconds" in body:
            WORLD.op_seconds = float(body["opSeconds"])
        if "operationsPage" in body:
            WORLD.operations_page = int(body["operationsPage"])
        return 200, {"opSeconds": WORLD.op_seconds, "operationsPage": WORLD.operations_page}


# Compute Engine's regional managed instance groups (gcp_emu_compute.py).
COMPUTE = gcp_emu_compute.register(WORLD, Handler, ROUTES, rfc3339, ApiError)
# Cloud DNS v1's managed zones, record sets and changes (gcp_emu_dns.py).
DNS = gcp_emu_dns.register(WORLD, Handler, ROUTES, rfc3339, ApiError)


def main():
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    server.daemon_threads = True
    print(f"gcp_emu: Cloud SQL Admin v1 + Monitoring v3 on http://{HOST}:{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
