"""Compute Engine for the emulator world: regional managed instance groups.

A module of localstack/gcp_emu.py (registered there by `register`), in its
own file so that each Google API's model keeps its own routes and state.
Why this much and no more: a failover of a `[[instance_group]]` resizes the
target region's group (or raises its autoscaler's minimum) and must wait
until the instances RUN, not merely until Compute accepted the resize. So
the model keeps the two clocks apart, as Compute does:

* `regions/{r}/instanceGroupManagers/{m}/resize?size=N` (POST) answers a
  regional Operation at once (`PENDING`, then `RUNNING`, `DONE` after
  DRCTL_GCP_COMPUTE_OP_SECONDS, 0.5 s): DONE when the resize is
  *scheduled*. Only then does the group's `targetSize` change and new
  instances appear, `currentAction` CREATING, then VERIFYING (RUNNING),
  then NONE (RUNNING) after DRCTL_GCP_VM_SECONDS (3 s); surplus instances are
  DELETING, then gone. A `requestId` seen before answers the same operation
  (Compute's retry de-duplication).
* `.../instanceGroupManagers/{m}` (GET): `targetSize`, `currentActions` (the
  13 counters Compute sends), `status.isStable` (every instance NONE and as
  many as the target size), `status.autoscaler` when one is attached.
* `.../listManagedInstances` (POST): each instance's `currentAction`,
  `instanceStatus` (absent while CREATING, as on Google Cloud) and, for an
  instance that cannot be created (armed with `/emu/compute/fail`), its
  `lastAttempt.errors`: it stays CREATING and the group is never stable.
* `regions/{r}/autoscalers/{a}` (GET) and `regions/{r}/autoscalers?autoscaler=a`
  (PATCH, `autoscalingPolicy.minNumReplicas`/`maxNumReplicas`): an
  Operation; when DONE, the group's target size is raised to the new
  minimum (the autoscaler's recommendation, at once).
* `regions/{r}/operations/{op}` (GET).
* Compute's errors: the HTTP status and `{"error": {"code", "message",
  "errors"}}` with no `status` field (as recorded on Google Cloud:
  localstack/contract/compute-rigm_http.log).

Admin: `/emu/compute/groups` (seed a group, RUNNING at its size, with or
without an autoscaler), `/emu/compute/fail` (instances of a group that cannot
be created, with the error Compute gives), `/emu/compute/config`.
"""
import os
import time
import uuid

API = "https://www.googleapis.com/compute/v1"
ACTIONS = ["abandoning", "creating", "creatingWithoutRetries", "deleting", "none",
           "recreating", "refreshing", "restarting", "resuming", "starting", "stopping",
           "suspending", "verifying"]


# The server's error class (set by `register`: the one its dispatch catches).
_ERROR = None


def _api_error(code, message, reason):
    """Compute's error: as gcp_emu's, but without `status` (Compute sends none)."""
    e = _ERROR(code, message, reason)
    plain = e.body

    def body():
        b = plain()
        b["error"].pop("status", None)
        return b

    e.body = body
    return e


class Compute:
    """Groups, autoscalers and regional operations (under gcp_emu's lock)."""

    def __init__(self, rfc3339):
        self.rfc3339 = rfc3339
        self.op_seconds = float(os.environ.get("DRCTL_GCP_COMPUTE_OP_SECONDS", "0.5"))
        self.vm_seconds = float(os.environ.get("DRCTL_GCP_VM_SECONDS", "3"))
        self.reset()

    def reset(self):
        self.groups = {}  # (project, region, name) -> group
        self.autoscalers = {}  # (project, region, name) -> autoscaler
        self.operations = {}  # (project, region, op name) -> op
        self.request_ids = {}  # requestId -> op key
        self.failures = {}  # (project, region, group) -> (code, message)

    # ---------------------------------------------------------- the model
    def group(self, project, region, name):
        g = self.groups.get((project, region, name))
        if g is None:
            raise _api_error(404, f"The resource 'projects/{project}/regions/{region}/"
                             f"instanceGroupManagers/{name}' was not found", "notFound")
        return g

    def autoscaler(self, project, region, name):
        a = self.autoscalers.get((project, region, name))
        if a is None:
            raise _api_error(404, f"The resource 'projects/{project}/regions/{region}/"
                             f"autoscalers/{name}' was not found", "notFound")
        return a

    def _add_instances(self, g, n, at):
        for _ in range(n):
            i = len(g["_instances"]) + g["_made"]
            g["_made"] += 1
            zone = f"{g['_region']}-{'abc'[i % 3]}"
            name = f"{g['baseInstanceName']}-{uuid.uuid4().hex[:4]}"
            fail = self.failures.get((g["_project"], g["_region"], g["name"]))
            g["_instances"].append({"name": name, "zone": zone, "t0": at, "fail": fail,
                                    "id": str(uuid.uuid4().int % 10**19), "deleting": None})

    def _set_target(self, g, size, at):
        g["targetSize"] = size
        live = [i for i in g["_instances"] if i["deleting"] is None]
        if size > len(live):
            self._add_instances(g, size - len(live), at)
        else:
            for i in live[size:]:
                i["deleting"] = at

    def seed(self, spec):
        project, region, name = spec["project"], spec["region"], spec["name"]
        size = int(spec.get("size", 0))
        now = time.time()
        link = f"{API}/projects/{project}/regions/{region}"
        g = {
            "kind": "compute#instanceGroupManager",
            "id": str(uuid.uuid4().int % 10**19),
            "creationTimestamp": self.rfc3339(now - 86400),
            "name": name,
            "region": link,
            "baseInstanceName": spec.get("baseInstanceName", name),
            "instanceTemplate": f"{API}/projects/{project}/global/instanceTemplates/{name}-tpl",
            "instanceGroup": f"{link}/instanceGroups/{name}",
            "selfLink": f"{link}/instanceGroupManagers/{name}",
            "fingerprint": "abcdef0123A=",
            "listManagedInstancesResults": "PAGELESS",
            "distributionPolicy": {"targetShape": "EVEN", "zones": [
                {"zone": f"{API}/projects/{project}/zones/{region}-{z}"} for z in "abc"]},
            "targetSize": size,
            "_project": project, "_region": region, "_instances": [], "_made": 0,
        }
        # Seeded instances run already (created long ago).
        self._add_instances(g, size, now - 10 * self.vm_seconds)
        a = spec.get("autoscaler")
        if a:
            aname = a.get("name", f"{name}-as")
            self.autoscalers[(project, region, aname)] = {
                "kind": "compute#autoscaler",
                "id": str(uuid.uuid4().int % 10**19),
                "creationTimestamp": self.rfc3339(now - 86400),
                "name": aname,
                "region": link,
                "target": g["selfLink"],
                "selfLink": f"{link}/autoscalers/{aname}",
                "status": "ACTIVE",
                "autoscalingPolicy": {
                    "minNumReplicas": int(a.get("min", size)),
                    "maxNumReplicas": int(a.get("max", max(size, 1) * 4)),
                    "coolDownPeriodSec": 60,
                    "cpuUtilization": {"utilizationTarget": 0.6, "predictiveMethod": "NONE"},
                    "mode": "ON",
                },
            }
            g["_autoscaler"] = aname
        self.groups[(project, region, name)] = g
        return self.shown_group(g)

    def _instance_view(self, g, i, now):
        age = now - i["t0"]
        out = {"instance": f"{API}/projects/{g['_project']}/zones/{i['zone']}/instances/{i['name']}",
               "id": i["id"], "name": i["name"],
               "version": {"instanceTemplate": g["instanceTemplate"]}}
        if i["deleting"] is not None:
            out.update(currentAction="DELETING", instanceStatus="STOPPING")
        elif i["fail"] is not None:
            code, message = i["fail"]
            out["currentAction"] = "CREATING"
            out["lastAttempt"] = {"errors": {"errors": [{"code": code, "message": message}]}}
        elif age < 0.6 * self.vm_seconds:
            out["currentAction"] = "CREATING"
        elif age < self.vm_seconds:
            out.update(currentAction="VERIFYING", instanceStatus="RUNNING")
        else:
            out.update(currentAction="NONE", instanceStatus="RUNNING")
        return out

    def advance(self):
        now = time.time()
        for op in self.operations.values():
            if op["status"] == "DONE":
                continue
            age = now - op["_t0"]
            if age >= self.op_seconds:
                op.update(status="DONE", progress=100,
                          endTime=self.rfc3339(op["_t0"] + self.op_seconds))
                op.setdefault("startTime", self.rfc3339(op["_t0"]))
                op["_effect"](op["_t0"] + self.op_seconds)
            elif age >= self.op_seconds / 4:
                op["status"] = "RUNNING"
                op.setdefault("startTime", self.rfc3339(op["_t0"] + self.op_seconds / 4))
        for g in self.groups.values():
            g["_instances"] = [i for i in g["_instances"]
                               if i["deleting"] is None or now - i["deleting"] < self.vm_seconds / 2]

    def shown_group(self, g):
        now = time.time()
        views = [self._instance_view(g, i, now) for i in g["_instances"]]
        counts = {k: 0 for k in ACTIONS}
        for v in views:
            key = {"CREATING": "creating", "VERIFYING": "verifying", "DELETING": "deleting",
                   "NONE": "none"}[v["currentAction"]]
            counts[key] += 1
        out = {k: v for k, v in g.items() if not k.startswith("_")}
        out["currentActions"] = counts
        out["status"] = {
            "isStable": len(views) == g["targetSize"] and counts["none"] == len(views),
            "versionTarget": {"isReached": True},
            "stateful": {"hasStatefulConfig": False, "perInstanceConfigs": {"allEffective": True}},
            "allInstancesConfig": {"effective": True},
        }
        if g.get("_autoscaler"):
            out["status"]["autoscaler"] = f"{g['region']}/autoscalers/{g['_autoscaler']}"
        return out

    def start(self, project, region, op_type, target_link, effect, request_id):
        if request_id and request_id in self.request_ids:
            return self.operations[self.request_ids[request_id]]
        now = time.time()
        name = f"operation-{int(now * 1000)}-{uuid.uuid4().hex[:13]}"
        op = {
            "kind": "compute#operation",
            "id": str(uuid.uuid4().int % 10**19),
            "name": name,
            "operationType": op_type,
            "status": "PENDING",
            "progress": 0,
            "insertTime": self.rfc3339(now),
            "region": f"{API}/projects/{project}/regions/{region}",
            "selfLink": f"{API}/projects/{project}/regions/{region}/operations/{name}",
            "targetId": str(uuid.uuid5(uuid.NAMESPACE_URL, target_link).int % 10**19),
            "targetLink": target_link,
            "user": "drctl@emulator.iam.gserviceaccount.com",
            "_t0": now, "_effect": effect,
        }
        key = (project, region, name)
        self.operations[key] = op
        if request_id:
            self.request_ids[request_id] = key
        return op

    def resize(self, project, region, name, size, request_id):
        g = self.group(project, region, name)
        if size < 0:
            raise _api_error(400, "Invalid value for field 'size': '%d'. Must be greater than or "
                             "equal to 0." % size, "invalid")
        return self.start(project, region, "compute.regionInstanceGroupManagers.resize",
                          g["selfLink"], lambda at: self._set_target(g, size, at), request_id)

    def patch_autoscaler(self, project, region, name, body, request_id):
        a = self.autoscaler(project, region, name)
        want = dict(a["autoscalingPolicy"])
        want.update((body or {}).get("autoscalingPolicy", {}))
        lo, hi = int(want.get("minNumReplicas", 0)), int(want["maxNumReplicas"])
        if lo > hi:
            raise _api_error(400, "Invalid value for field 'resource.autoscalingPolicy."
                             f"minNumReplicas': '{lo}'. Must be less than or equal to "
                             f"maxNumReplicas ({hi}).", "invalid")
        g = next((g for g in self.groups.values() if g["selfLink"] == a["target"]), None)

        def effect(at):
            a["autoscalingPolicy"] = want
            if g is not None:
                size = min(max(g["targetSize"], lo), hi)
                if size != g["targetSize"]:
                    self._set_target(g, size, at)
                a["recommendedSize"] = size

        return self.start(project, region, "compute.regionAutoscalers.patch", a["selfLink"],
                          effect, request_id)


def shown(op):
    return {k: v for k, v in op.items() if not k.startswith("_")}


ROUTES = [
    ("GET", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/instanceGroupManagers/([^/]+)$",
     "compute_get_group"),
    ("POST", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/instanceGroupManagers/([^/]+)/resize$",
     "compute_resize"),
    ("POST", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/instanceGroupManagers/([^/]+)"
     r"/listManagedInstances$", "compute_list_instances"),
    ("GET", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/autoscalers/([^/]+)$",
     "compute_get_autoscaler"),
    ("PATCH", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/autoscalers$",
     "compute_patch_autoscaler"),
    ("GET", r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/operations/([^/]+)$",
     "compute_get_operation"),
    ("POST", r"^/emu/compute/groups$", "compute_emu_seed"),
    ("POST", r"^/emu/compute/fail$", "compute_emu_fail"),
    ("POST", r"^/emu/compute/config$", "compute_emu_config"),
]


def register(world, handler, routes, rfc3339, error):
    """Adds Compute to gcp_emu's server: its state (reset with the world's),
    its routes and their handlers; `error` is the server's ApiError."""
    global _ERROR
    _ERROR = error
    state = Compute(rfc3339)
    reset = world.reset

    def reset_all():
        reset()
        state.reset()

    world.reset = reset_all
    routes.extend(ROUTES)

    def q(query, key, default=None):
        return query.get(key, [default])[0]

    def get_group(self, p, r, m, query, body):
        state.advance()
        return 200, state.shown_group(state.group(p, r, m))

    def resize(self, p, r, m, query, body):
        state.advance()
        try:
            size = int(q(query, "size"))
        except (TypeError, ValueError):
            raise _api_error(400, "Required parameter 'size' is missing or not an integer.",
                             "required")
        return 200, shown(state.resize(p, r, m, size, q(query, "requestId")))

    def list_instances(self, p, r, m, query, body):
        state.advance()
        g = state.group(p, r, m)
        now = time.time()
        views = [state._instance_view(g, i, now) for i in g["_instances"]]
        return 200, ({"managedInstances": views} if views else {})

    def get_autoscaler(self, p, r, a, query, body):
        state.advance()
        return 200, shown(state.autoscaler(p, r, a))

    def patch_autoscaler(self, p, r, query, body):
        state.advance()
        name = q(query, "autoscaler") or (body or {}).get("name")
        if not name:
            raise _api_error(400, "Required field 'autoscaler' not specified", "required")
        return 200, shown(state.patch_autoscaler(p, r, name, body, q(query, "requestId")))

    def get_operation(self, p, r, op, query, body):
        state.advance()
        o = state.operations.get((p, r, op))
        if o is None:
            raise _api_error(404, f"The resource 'projects/{p}/regions/{r}/operations/{op}' "
                             "was not found", "notFound")
        return 200, shown(o)

    def emu_seed(self, query, body):
        return 200, state.seed(body)

    def emu_fail(self, query, body):
        state.failures[(body["project"], body["region"], body["name"])] = (
            body.get("code", "ZONE_RESOURCE_POOL_EXHAUSTED"),
            body.get("message", "The zone does not have enough resources available to fulfill "
                                "the request. Try a different zone, or try again later."))
        return 200, {}

    def emu_config(self, query, body):
        if "opSeconds" in body:
            state.op_seconds = float(body["opSeconds"])
        if "vmSeconds" in body:
            state.vm_seconds = float(body["vmSeconds"])
        return 200, {"opSeconds": state.op_seconds, "vmSeconds": state.vm_seconds}

    for name, fn in (("compute_get_group", get_group), ("compute_resize", resize),
                     ("compute_list_instances", list_instances),
                     ("compute_get_autoscaler", get_autoscaler),
                     ("compute_patch_autoscaler", patch_autoscaler),
                     ("compute_get_operation", get_operation),
                     ("compute_emu_seed", emu_seed), ("compute_emu_fail", emu_fail),
                     ("compute_emu_config", emu_config)):
        setattr(handler, name, fn)
    if not hasattr(handler, "do_PATCH"):
        handler.do_PATCH = lambda self: self._dispatch("PATCH")
    return state
