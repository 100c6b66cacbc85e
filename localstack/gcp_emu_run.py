"""Cloud Run Admin v2 for the GCP emulator (localstack/gcp_emu.py): the part
of a service a failover touches.

Why its own module: gcp_emu.py serves every Google API of the emulator world
from one process; each API's model lives beside it in a module of its own
(its state, its routes, its admin endpoints), registered there in a few
lines, so that APIs are added without editing each other's code.

What it models (localstack/README.md, "Cloud Run"):

* `GET /v2/projects/{p}/locations/{l}/services/{s}`: a service with its
  `generation`/`observedGeneration` (int64, sent as JSON strings as Google
  does), `template.scaling` (`minInstanceCount`, `maxInstanceCount`;
  proto3 JSON leaves out a zero), `latestCreatedRevision`,
  `latestReadyRevision`, `terminalCondition` and `conditions` (type
  `Ready`, state `CONDITION_SUCCEEDED` / `CONDITION_RECONCILING` /
  `CONDITION_FAILED`), `reconciling` and `etag`.
* `PATCH` of the same path with an `updateMask` (the crate's
  `update_service`): only `template.scaling.minInstanceCount` and
  `template.scaling.maxInstanceCount` are taken; an `etag` in the body
  must match (else 409 `ABORTED`). It creates the next revision
  (`{s}-0000N-xyz`) and answers a long-running operation
  (`projects/{p}/locations/{l}/operations/{o}`, `done: false`, the service
  in `metadata`), which is done after `rolloutSeconds` (DRCTL_GCP_RUN_SECONDS,
  2 s): then the revision serves (`latestReadyRevision` is it, `Ready`
  succeeded), or, when a failure was armed, the service keeps serving the
  old revision, `Ready` fails with the revision's name and the message,
  and the operation ends with `error` (code 9, FAILED_PRECONDITION).
* Errors as Cloud Run sends them (`{"error": {code, message, status}}`,
  no `errors` list: localstack/contract/run-service_http.log).

Not modelled: create/delete, traffic splits, revisions' own resources,
IAM, a PATCH without an update mask (refused), instance counts that serve.
"""
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone

PREFIX = r"^/v2/projects/([^/]+)/locations/([^/]+)"
MASKS = {
    "template.scaling.min_instance_count": "minInstanceCount",
    "template.scaling.mininstancecount": "minInstanceCount",
    "template.scaling.max_instance_count": "maxInstanceCount",
    "template.scaling.maxinstancecount": "maxInstanceCount",
}
STATUS_OF = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION"}


def rfc3339(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error(code, message, status=None):
    """A Cloud Run error answer (its status and body)."""
    return code, {"error": {"code": code, "message": message,
                            "status": status or STATUS_OF.get(code, "UNKNOWN")}}


class RunWorld:
    """Every Cloud Run service and operation of the emulator."""

    def __init__(self):
        self.lock = threading.RLock()
        self.rollout_seconds = float(os.environ.get("DRCTL_GCP_RUN_SECONDS", "2"))
        self.reset()

    def reset(self):
        with self.lock:
            self.services = {}  # (project, location, name) -> dict
            self.operations = {}  # full operation name -> dict
            self.failures = {}  # (project, location, name) -> message

    @staticmethod
    def full(project, location, name):
        return f"projects/{project}/locations/{location}/services/{name}"

    def revision(self, key, n):
        return f"{self.full(*key)}/revisions/{key[2]}-{n:05d}-{uuid.uuid4().hex[:3]}"

    def ready(self, svc, state, message=None, at=None):
        cond = {"type": "Ready", "state": state,
                "lastTransitionTime": rfc3339(at or time.time())}
        if message:
            cond["message"] = message
        svc["terminalCondition"] = cond
        svc["conditions"] = [
            {"type": "RoutesReady", "state": state, "lastTransitionTime": cond["lastTransitionTime"]},
            {"type": "ConfigurationsReady", "state": state,
             "lastTransitionTime": cond["lastTransitionTime"]},
        ]
        if message:
            svc["conditions"][1]["message"] = message

    def seed(self, spec):
        """Puts a service in the world as it is, serving its first revision."""
        with self.lock:
            key = (spec["project"], spec.get("location", "us-central1"), spec["name"])
            now = time.time()
            scaling = {}
            if int(spec.get("minInstanceCount", 0)):
                scaling["minInstanceCount"] = int(spec["minInstanceCount"])
            scaling["maxInstanceCount"] = int(spec.get("maxInstanceCount", 100))
            rev = self.revision(key, 1)
            svc = {
                "name": self.full(*key),
                "uid": str(uuid.uuid4()),
                "generation": "1",
                "observedGeneration": "1",
                "createTime": rfc3339(now - 86400),
                "updateTime": rfc3339(now - 86400),
                "creator": "drctl@emulator.iam.gserviceaccount.com",
                "lastModifier": "drctl@emulator.iam.gserviceaccount.com",
                "ingress": "INGRESS_TRAFFIC_ALL",
                "launchStage": "GA",
                "template": {
                    "containers": [{"image": spec.get("image", "gcr.io/cloudrun/hello"),
                                    "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}}}],
                    "scaling": scaling,
                    "maxInstanceRequestConcurrency": 80,
                    "timeout": "300s",
                },
                "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
                "latestCreatedRevision": rev,
                "latestReadyRevision": rev,
                "uri": f"https://{key[2]}-{uuid.uuid5(uuid.NAMESPACE_DNS, key[0]).hex[:10]}"
                       f"-{key[1][:2]}.a.run.app",
                "etag": uuid.uuid4().hex[:12] + "A=",
                "_revisions": 1,
            }
            self.ready(svc, "CONDITION_SUCCEEDED", at=now - 86400)
            self.services[key] = svc
            return self.shown(svc)

    @staticmethod
    def shown(obj):
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def advance(self):
        """Ends every rollout whose time has come."""
        now = time.time()
        for op in self.operations.values():
            if op["done"] or now - op["_t0"] < self.rollout_seconds:
                continue
            svc = self.services[op["_key"]]
            svc["reconciling"] = False
            svc["observedGeneration"] = svc["generation"]
            svc["updateTime"] = rfc3339(now)
            op["done"] = True
            if op["_error"]:
                rev = svc["latestCreatedRevision"].rsplit("/", 1)[-1]
                msg = f"Revision '{rev}' is not ready and cannot serve traffic. {op['_error']}"
                self.ready(svc, "CONDITION_FAILED", msg, now)
                op["error"] = {"code": 9, "message": msg}
            else:
                svc["latestReadyRevision"] = svc["latestCreatedRevision"]
                self.ready(svc, "CONDITION_SUCCEEDED", at=now)
                op["response"] = dict(self.shown(svc), **{"@type": "type.googleapis.com/google.cloud.run.v2.Service"})
            op["metadata"] = dict(self.shown(svc), **{"@type": "type.googleapis.com/google.cloud.run.v2.Service"})

    def get(self, project, location, name):
        svc = self.services.get((project, location, name))
        if svc is None:
            return error(404, f'service "{self.full(project, location, name)}" not found')
        return 200, self.shown(svc)

    def patch(self, project, location, name, query, body):
        key = (project, location, name)
        svc = self.services.get(key)
        if svc is None:
            return error(404, f'service "{self.full(*key)}" not found')
        mask = [p.strip() for p in query.get("updateMask", [""])[0].split(",") if p.strip()]
        if not mask:
            return error(400, "The emulator takes a service update with an updateMask only.")
        fields = []
        for p in mask:
            f = MASKS.get(p.lower()) or MASKS.get(p)
            if f is None:
                return error(400, f"Invalid update mask path: {p}.")
            fields.append(f)
        if body.get("etag") and body["etag"] != svc["etag"]:
            return error(409, "The etag does not match the service's: it was changed since it was read.")
        if svc.get("reconciling"):
            return error(409, f"Conflict for resource '{name}': version '{svc['generation']}' "
                              "is being reconciled. Retry when it is done.")
        scaling = ((body.get("template") or {}).get("scaling") or {})
        new = dict(svc["template"].get("scaling", {}))
        for f in fields:
            v = int(scaling.get(f, 0) or 0)
            if v < 0:
                return error(400, f"template.scaling.{f} must be >= 0.")
            if v:
                new[f] = v
            else:
                new.pop(f, None)
        if new.get("minInstanceCount", 0) > new.get("maxInstanceCount", 1000):
            return error(400, "template.scaling.minInstanceCount must be <= maxInstanceCount.")
        now = time.time()
        svc["template"]["scaling"] = new
        svc["generation"] = str(int(svc["generation"]) + 1)
        svc["_revisions"] += 1
        svc["latestCreatedRevision"] = self.revision(key, svc["_revisions"])
        svc["reconciling"] = True
        svc["etag"] = uuid.uuid4().hex[:12] + "A="
        svc["updateTime"] = rfc3339(now)
        self.ready(svc, "CONDITION_RECONCILING", at=now)
        op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
        op = {"name": op_name, "done": False,
              "metadata": dict(self.shown(svc), **{"@type": "type.googleapis.com/google.cloud.run.v2.Service"}),
              "_t0": now, "_key": key, "_error": self.failures.pop(key, None)}
        self.operations[op_name] = op
        return self.operation(project, location, op_name.rsplit("/", 1)[-1])

    def operation(self, project, location, op):
        o = self.operations.get(f"projects/{project}/locations/{location}/operations/{op}")
        if o is None:
            return error(404, f'operation "projects/{project}/locations/{location}/operations/{op}" not found')
        out = self.shown(o)
        if not out["done"]:
            out.pop("done")  # proto3 JSON leaves out false
        return 200, out


RUN = RunWorld()


def _routed(fn):
    def call(*groups, query, body):
        with RUN.lock:
            RUN.advance()
            return fn(*groups, query=query, body=body)
    return call


def _emu_config(query, body):
    if "rolloutSeconds" in body:
        RUN.rollout_seconds = float(body["rolloutSeconds"])
    return 200, {"rolloutSeconds": RUN.rollout_seconds}


def _emu_fail(query, body):
    RUN.failures[(body["project"], body.get("location", "us-central1"), body["name"])] = body.get(
        "message", "The user-provided container failed to start and listen on the port.")
    return 200, {}


# (method, path pattern, handler(*groups, query=, body=) -> (status, body)).
ROUTES = [
    ("GET", PREFIX + r"/services/([^/]+)$",
     _routed(lambda p, l, s, query, body: RUN.get(p, l, s))),
    ("PATCH", PREFIX + r"/services/([^/]+)$",
     _routed(lambda p, l, s, query, body: RUN.patch(p, l, s, query, body))),
    ("GET", PREFIX + r"/operations/([^/]+)$",
     _routed(lambda p, l, o, query, body: RUN.operation(p, l, o))),
    ("POST", r"^/emu/run/services$", _routed(lambda query, body: (200, RUN.seed(body)))),
    ("POST", r"^/emu/run/fail$", _routed(_emu_fail)),
    ("POST", r"^/emu/run/config$", _routed(_emu_config)),
]
