"""Cloud Run Admin v2 for the GCP emulator (localstack/gcp_emu.py): the part
of a service a failover touches.

Why its own module: gcp_emu.py serves every Google API of the emulator world
from one process; each API's model lives beside it in a module of its own
(its state, its routes, its admin endpoints), registered there in a few
lines, so that APIs are added without editing each other's code.

What it models (localstack/README.md, "Cloud Run"):

* `GET /v2/projects/{p}/locations/{l}/services/{s}`: a service with its
  `generation`/`observedGeneration` (int64, sent as JSON strings as Google
  does), `labels` (a map of strings; left out when empty, as proto3 JSON
  does an empty map, and as the recorded service shows it when set:
  localstack/contract/run-service_http.log), the SERVICE-level floor
  `scaling` (message `ServiceScaling`: `minInstanceCount`), the
  REVISION-level `template.scaling` (`minInstanceCount`,
  `maxInstanceCount`), `latestCreatedRevision`, `latestReadyRevision`,
  `terminalCondition` and `conditions` (type `Ready`, state
  `CONDITION_SUCCEEDED` / `CONDITION_RECONCILING` / `CONDITION_FAILED`),
  `reconciling` and `etag`. proto3 JSON leaves out a zero: a service-level
  floor of 0 leaves out the whole `scaling` object (the emulator never
  sends `"scaling": {}`; the recorded service, which has none set, has no
  `scaling` either), a revision floor of 0 leaves out
  `template.scaling.minInstanceCount`.
* `PATCH` of the same path with an `updateMask` (the crate's
  `update_service`). Mask paths are taken case-insensitively, in snake_case
  or camelCase, comma-separated; any other path is refused (400):
  - `template.scaling.min_instance_count`, `template.scaling.max_instance_count`
    (revision level): the patch creates the next revision
    (`{s}-0000N-xyz`), which serves once the rollout is over.
  - `scaling.min_instance_count` (service level): Google's docs
    (https://cloud.google.com/run/docs/configuring/min-instances, "Applying
    minimum instances at service-level versus revision-level") say it
    "goes into effect without needing to deploy a new revision", and
    recommend it over, and not combined with, the revision level. So: no
    revision (`latestCreatedRevision`/`latestReadyRevision` unchanged), but
    the same rollout as a revision's, below.
  - `labels`: the body's `labels` replace the whole map (absent or `{}`
    clears it). Checked as Google Cloud labels
    (https://cloud.google.com/resource-manager/docs/labels-overview#requirements):
    at most 64; a key 1-63 characters starting with a lowercase letter, a
    value 0-63, both only lowercase letters, digits, `_` and `-` (Google
    also allows international characters: the emulator refuses them, being
    ASCII only); else 400 `INVALID_ARGUMENT` naming the key or value.
  Paths may be mixed in one patch (template and service level too: the
  template part makes its revision); one patch raises `generation` by one.
  Negative counts, or a revision minimum above the revision maximum, are
  refused (400). An `etag` in the body must match (else 409 `ABORTED`), and
  every accepted patch gives the service a new etag (a rollout's end does
  not).
* A rollout (a patch with a `template.scaling.*` or `scaling.*` path)
  answers a long-running operation
  (`projects/{p}/locations/{l}/operations/{o}`, `done` left out while
  false, the service in `metadata`) that is done after `rolloutSeconds`
  (DRCTL_GCP_RUN_SECONDS, 2 s). Until then the service is `reconciling`,
  `generation` is ahead of `observedGeneration`, `Ready` is
  `CONDITION_RECONCILING`. Then `observedGeneration` catches up and either
  `Ready` succeeds (a new revision becomes `latestReadyRevision`), or, when
  a failure was armed (`POST /emu/run/fail`), `Ready` is `CONDITION_FAILED`
  with a message naming the failure (the new revision's name for a
  revision; "the service's minimum instances" for a service-level floor),
  the old revision keeps serving, the operation ends with `error` (code 9,
  FAILED_PRECONDITION), and the spec stays as written (floors, labels).
* A labels-only patch is metadata: no rollout, nothing reconciling; it
  raises `generation` and `observedGeneration` together and answers an
  operation already `done: true`, the service in `metadata` and
  `response`. `Ready` is left as it was. It consumes no armed failure.
* A patch while the service is reconciling (a rollout under way): a patch
  with any rollout path is refused, 409 `ABORTED` ("... is being
  reconciled. Retry when it is done."), after the etag check (a stale etag
  is refused as such first). A labels-only patch is accepted (drctl marks a
  service, then raises its floor, and may mark it again while the floor
  rolls out): `generation` goes up, `observedGeneration` stays behind and
  catches up with it when the rollout ends; the rollout goes on.
* Errors as Cloud Run sends them (`{"error": {code, message, status}}`,
  no `errors` list: localstack/contract/run-service_http.log). The words of
  the 400s and of a failed service-level floor are the emulator's own.

Admin: `POST /emu/run/services` seeds a service serving its first revision:
spec `project`, `location` (us-central1), `name`, `minInstanceCount` (the
SERVICE-level floor, `scaling.minInstanceCount`), `revisionMinInstanceCount`
(the revision floor, `template.scaling.minInstanceCount`; for a test that
shows one), `maxInstanceCount` (`template.scaling`, 100), `labels`, `image`.

Not modelled: create/delete, traffic splits, revisions' own resources,
IAM, a PATCH without an update mask (refused), a `scaling` or
`template.scaling` mask path without its field, `scalingMode` and manual
instance counts, how a service-level floor and a revision floor combine,
instance counts that serve, `reconciling: false` left out (sent once a
rollout has ended).
"""
import copy
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone

PREFIX = r"^/v2/projects/([^/]+)/locations/([^/]+)"
# Update mask paths (lowercased) -> what they set.
TEMPLATE_MASKS = {
    "template.scaling.min_instance_count": "minInstanceCount",
    "template.scaling.mininstancecount": "minInstanceCount",
    "template.scaling.max_instance_count": "maxInstanceCount",
    "template.scaling.maxinstancecount": "maxInstanceCount",
}
SERVICE_MASKS = {"scaling.min_instance_count", "scaling.mininstancecount"}
LABELS_MASK = "labels"
# Google Cloud labels (resource-manager/docs/labels-overview#requirements), ASCII only.
MAX_LABELS = 64
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
SERVICE_TYPE = {"@type": "type.googleapis.com/google.cloud.run.v2.Service"}
STATUS_OF = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION"}


def rfc3339(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error(code, message, status=None):
    """A Cloud Run error answer (its status and body)."""
    return code, {"error": {"code": code, "message": message,
                            "status": status or STATUS_OF.get(code, "UNKNOWN")}}


class Refused(Exception):
    """A request refused: its answer is `error(*args)`."""


def count(value, path):
    """An instance count of the request (proto3 JSON: a number, or a string
    of one; absent is 0)."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)) \
            or not re.fullmatch(r"-?[0-9]+", str(value).strip()):
        raise Refused(400, f"Invalid value at '{path}': {value!r} is not an integer.")
    n = int(str(value).strip())
    if n < 0:
        raise Refused(400, f"{path} must be >= 0.")
    return n


def message(parent, name, path):
    """The message `name` of a request's object (absent: {})."""
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(400, f"Invalid value at '{path}': an object is wanted.")
    return value


def labels_of(value):
    """The labels map of a request, checked as Google Cloud's labels."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(400, "Invalid value at 'labels': a map of strings to strings is wanted.")
    if len(value) > MAX_LABELS:
        raise Refused(400, f"Too many labels: {len(value)} given, at most {MAX_LABELS} allowed.")
    for k, v in value.items():
        if not LABEL_KEY.fullmatch(k):
            raise Refused(400, f"Invalid label key '{k}': a key is 1 to 63 characters, starts with "
                               "a lowercase letter, and has only lowercase letters, digits, '_' and '-'.")
        if not isinstance(v, str) or not LABEL_VALUE.fullmatch(v):
            raise Refused(400, f"Invalid value {v!r} of label '{k}': a value is 0 to 63 characters, "
                               "only lowercase letters, digits, '_' and '-'.")
    return dict(value)


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

    @staticmethod
    def etag():
        return uuid.uuid4().hex[:12] + "A="

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

    @staticmethod
    def set_floor(svc, n):
        """The service-level floor (`scaling.minInstanceCount`): proto3 JSON
        leaves out 0, and the emulator then the whole `scaling`."""
        if n:
            svc["scaling"] = {"minInstanceCount": n}
        else:
            svc.pop("scaling", None)

    @staticmethod
    def set_labels(svc, labels):
        if labels:
            svc["labels"] = dict(labels)
        else:
            svc.pop("labels", None)  # proto3 JSON leaves out an empty map

    def seed(self, spec):
        """Puts a service in the world as it is, serving its first revision
        (spec: module doc, "Admin")."""
        with self.lock:
            try:
                key = (spec["project"], spec.get("location", "us-central1"), spec["name"])
                floor = count(spec.get("minInstanceCount"), "minInstanceCount")
                scaling = {}
                rev_floor = count(spec.get("revisionMinInstanceCount"), "revisionMinInstanceCount")
                if rev_floor:
                    scaling["minInstanceCount"] = rev_floor
                rev_max = count(spec.get("maxInstanceCount", 100), "maxInstanceCount")
                if rev_max:
                    scaling["maxInstanceCount"] = rev_max
                labels = labels_of(spec.get("labels"))
            except KeyError as e:
                return error(400, f"The seed spec needs {e}.")
            except Refused as e:
                return error(*e.args)
            now = time.time()
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
                "etag": self.etag(),
                "_revisions": 1,
            }
            self.set_floor(svc, floor)
            self.set_labels(svc, labels)
            self.ready(svc, "CONDITION_SUCCEEDED", at=now - 86400)
            self.services[key] = svc
            return 200, self.shown(svc)

    @staticmethod
    def shown(obj):
        """What the API shows of a service or operation: a copy (an
        operation's snapshot of its service must not follow later changes)."""
        return copy.deepcopy({k: v for k, v in obj.items() if not k.startswith("_")})

    def typed(self, svc):
        return dict(self.shown(svc), **SERVICE_TYPE)

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
                if op["_revision"]:
                    rev = svc["latestCreatedRevision"].rsplit("/", 1)[-1]
                    msg = f"Revision '{rev}' is not ready and cannot serve traffic. {op['_error']}"
                else:
                    msg = (f"The service's minimum instances (scaling.minInstanceCount "
                           f"{op['_floor']}) could not be reached. {op['_error']}")
                self.ready(svc, "CONDITION_FAILED", msg, now)
                op["error"] = {"code": 9, "message": msg}
            else:
                if op["_revision"]:
                    svc["latestReadyRevision"] = svc["latestCreatedRevision"]
                self.ready(svc, "CONDITION_SUCCEEDED", at=now)
                op["response"] = self.typed(svc)
            op["metadata"] = self.typed(svc)

    def get(self, project, location, name):
        svc = self.services.get((project, location, name))
        if svc is None:
            return error(404, f'service "{self.full(project, location, name)}" not found')
        return 200, self.shown(svc)

    def patch(self, project, location, name, query, body):
        try:
            return self._patch(project, location, name, query, body)
        except Refused as e:
            return error(*e.args)

    def _patch(self, project, location, name, query, body):
        key = (project, location, name)
        svc = self.services.get(key)
        if svc is None:
            return error(404, f'service "{self.full(*key)}" not found')
        mask = [p.strip() for p in query.get("updateMask", [""])[0].split(",") if p.strip()]
        if not mask:
            return error(400, "The emulator takes a service update with an updateMask only.")
        template_fields, service_floor, labels = [], False, False
        for p in mask:
            low = p.lower()
            if low in TEMPLATE_MASKS:
                template_fields.append(TEMPLATE_MASKS[low])
            elif low in SERVICE_MASKS:
                service_floor = True
            elif low == LABELS_MASK:
                labels = True
            else:
                return error(400, f"Invalid update mask path: {p}.")
        rollout = bool(template_fields or service_floor)
        if body.get("etag") and body["etag"] != svc["etag"]:
            return error(409, "The etag does not match the service's: it was changed since it was read.")
        if rollout and svc.get("reconciling"):
            return error(409, f"Conflict for resource '{name}': version '{svc['generation']}' "
                              "is being reconciled. Retry when it is done.")
        # Everything is checked before anything changes.
        new_template = dict(svc["template"].get("scaling", {}))
        scaling = message(message(body, "template", "template"), "scaling", "template.scaling")
        for f in template_fields:
            v = count(scaling.get(f), f"template.scaling.{f}")
            if v:
                new_template[f] = v
            else:
                new_template.pop(f, None)
        if new_template.get("minInstanceCount", 0) > new_template.get("maxInstanceCount", 1000):
            return error(400, "template.scaling.minInstanceCount must be <= maxInstanceCount.")
        floor = count(message(body, "scaling", "scaling").get("minInstanceCount"),
                      "scaling.minInstanceCount") if service_floor else None
        new_labels = labels_of(body.get("labels")) if labels else None

        now = time.time()
        svc["generation"] = str(int(svc["generation"]) + 1)
        svc["etag"] = self.etag()
        svc["updateTime"] = rfc3339(now)
        if labels:
            self.set_labels(svc, new_labels)
        op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
        if not rollout:
            # Metadata: nothing to roll out. observedGeneration follows at
            # once, unless a rollout under way holds it back (it catches up
            # when that ends).
            if not svc.get("reconciling"):
                svc["observedGeneration"] = svc["generation"]
            self.operations[op_name] = {
                "name": op_name, "done": True, "metadata": self.typed(svc),
                "response": self.typed(svc), "_t0": now, "_key": key, "_error": None,
                "_revision": False, "_floor": None}
            return self.operation(project, location, op_name.rsplit("/", 1)[-1])
        if template_fields:
            svc["template"]["scaling"] = new_template
            svc["_revisions"] += 1
            svc["latestCreatedRevision"] = self.revision(key, svc["_revisions"])
        if service_floor:
            self.set_floor(svc, floor)
        svc["reconciling"] = True
        self.ready(svc, "CONDITION_RECONCILING", at=now)
        self.operations[op_name] = {
            "name": op_name, "done": False, "metadata": self.typed(svc),
            "_t0": now, "_key": key, "_error": self.failures.pop(key, None),
            "_revision": bool(template_fields), "_floor": floor}
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
    ("POST", r"^/emu/run/services$", _routed(lambda query, body: RUN.seed(body))),
    ("POST", r"^/emu/run/fail$", _routed(_emu_fail)),
    ("POST", r"^/emu/run/config$", _routed(_emu_config)),
]
