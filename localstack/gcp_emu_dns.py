"""Cloud DNS v1 for the GCP emulator (gcp_emu.py): the REST subset a
`[[cloud_dns]]` failover calls, through Google's `google-cloud-dns-v1` crate.

Why here and not in moto or dnsplane.py: moto models Route 53, not Cloud
DNS, and Google ships no Cloud DNS emulator; what drctl needs is the control
plane's compare-and-swap (a change's deletions must match the record set
exactly) and a change that is `pending` for a while before it is `done`.

* managedZones get and list (`/dns/v1/projects/{p}/managedZones[/{z}]`).
* resourceRecordSets list (`.../rrsets`, filtered by `name` and `type` as
  Cloud DNS filters them: `type` only with `name`).
* changes.create: atomic. Every deletion must match a record set exactly
  (name, type, ttl, rrdatas, routingPolicy), else 412 `conditionNotMet`
  (status FAILED_PRECONDITION) and nothing changes; an addition whose name
  and type exist (after the deletions) is 409 `alreadyExists`. The record
  sets change at once (a read after the answer sees them); the change itself
  is `pending` for DRCTL_GCP_DNS_CHANGE_SECONDS (1 s; `/emu/dns/config`),
  then `done` (Cloud DNS: "the request to update the authoritative servers
  has been sent").
* changes.get and list (`sortOrder=descending`, `maxResults`).
* Admin: `/emu/dns/zones` (seed a zone), `/emu/dns/records` (put a record
  set as it is, without a change: another writer, for the tests),
  `/emu/dns/race` (arm another writer: the record set it puts right before
  the zone's next change, so a change built on an earlier read no longer
  matches), `/emu/dns/config`, `GET /emu/dns/zones` (every zone of every
  project, for dnsplane.py), `GET /emu/dns/rrsets?project=&zone=` (a
  zone's record sets as the name servers hold them: dnsplane.py's read, kept
  out of `/emu/calls`, so a test can assert a failover made no Cloud DNS API
  call), `/emu/dns/health` (POST `{"address": ..., "control":
  "gs://bucket/key"}`, GET the map): which control object a serving address
  answers its health path from, for dnsplane.py's answers to a
  `routingPolicy.primaryBackup` record set.

DNS answers (plain record sets and `primaryBackup` routing policies, the
health of a target read from its control object) are dnsplane.py's.

Not modelled here: DNSSEC, private zones, paging (every list is one
page), clientOperationId de-duplication, IAM.
"""
import os
import time

_ERROR = None


def _api_error(code, message, reason, status=None):
    return _ERROR(code, message, reason, status)


def _fqdn(name):
    name = (name or "").strip().lower()
    return name if name.endswith(".") else name + "."


def _same(a, b):
    """Whether a deletion matches a record set exactly, as Cloud DNS
    compares them (rrdatas as a set of strings, the routing policy too)."""
    return (_fqdn(a.get("name")) == _fqdn(b.get("name"))
            and a.get("type") == b.get("type")
            and int(a.get("ttl", 0) or 0) == int(b.get("ttl", 0) or 0)
            and sorted(a.get("rrdatas") or []) == sorted(b.get("rrdatas") or [])
            and (a.get("routingPolicy") or None) == (b.get("routingPolicy") or None))


class Dns:
    """Zones, their record sets and changes, under the server's lock."""

    def __init__(self, rfc3339):
        self.rfc3339 = rfc3339
        self.change_seconds = float(os.environ.get("DRCTL_GCP_DNS_CHANGE_SECONDS", "1"))
        self.reset()

    def reset(self):
        self.zones = {}  # (project, zone) -> zone dict
        self.rrsets = {}  # (project, zone) -> {(name, type): rrset}
        self.changes = {}  # (project, zone) -> [change dict with _at]
        self.races = {}  # (project, zone) -> rrset another writer puts first
        self.health = {}  # serving address -> control object URL (dnsplane.py reads it)

    def zone(self, p, z):
        got = self.zones.get((p, z))
        if got is None:
            raise _api_error(404, f"The 'parameters.managedZone' resource named '{z}' does not "
                             "exist.", "notFound")
        return got

    def seed_zone(self, spec):
        p, z = spec["project"], spec["name"]
        dns_name = _fqdn(spec["dnsName"])
        self.zones[(p, z)] = {
            "kind": "dns#managedZone", "name": z, "dnsName": dns_name,
            "description": spec.get("description", ""),
            "id": str(abs(hash((p, z))) % 10**18), "creationTime": self.rfc3339(time.time()),
            "nameServers": [f"ns-cloud-e{i}.googledomains.com." for i in range(1, 5)],
            "visibility": "public", "labels": {}, "privateVisibilityConfig": {},
            "cloudLoggingConfig": {"kind": "dns#managedZoneCloudLoggingConfig"},
        }
        self.rrsets.setdefault((p, z), {})
        self.changes.setdefault((p, z), [])
        return self.zones[(p, z)]

    @staticmethod
    def shown_rrset(r):
        out = {"kind": "dns#resourceRecordSet", "name": r["name"], "type": r["type"],
               "ttl": int(r.get("ttl", 0) or 0), "rrdatas": list(r.get("rrdatas") or [])}
        if r.get("routingPolicy"):
            out["routingPolicy"] = r["routingPolicy"]
        return out

    def put_rrset(self, p, z, r):
        """A record set as it is (no change): another writer, for tests."""
        self.zone(p, z)
        r = self.shown_rrset(dict(r, name=_fqdn(r["name"])))
        if not r["rrdatas"] and not r.get("routingPolicy"):
            self.rrsets[(p, z)].pop((r["name"], r["type"]), None)
        else:
            self.rrsets[(p, z)][(r["name"], r["type"])] = r
        return r

    def list_rrsets(self, p, z, name, rtype):
        self.zone(p, z)
        if rtype and not name:
            raise _api_error(400, "Invalid value for 'parameters.type': the 'name' parameter "
                             "must also be present", "invalid", "INVALID_ARGUMENT")
        sets = sorted(self.rrsets[(p, z)].items())
        return [r for (n, t), r in sets
                if (not name or n == _fqdn(name)) and (not rtype or t == rtype)]

    def create_change(self, p, z, body):
        zone = self.zone(p, z)
        race = self.races.pop((p, z), None)
        if race is not None:  # another writer, armed by /emu/dns/race
            self.put_rrset(p, z, race)
        sets = dict(self.rrsets[(p, z)])
        deletions = [self.shown_rrset(dict(d, name=_fqdn(d.get("name")))) for d in
                     body.get("deletions") or []]
        additions = [self.shown_rrset(dict(a, name=_fqdn(a.get("name")))) for a in
                     body.get("additions") or []]
        if not deletions and not additions:
            raise _api_error(400, "The 'entity.change' parameter is required but was missing.",
                             "required", "INVALID_ARGUMENT")
        for i, d in enumerate(deletions):
            have = sets.get((d["name"], d["type"]))
            if have is None or not _same(have, d):
                # Cloud DNS words a deletion that does not match exactly so.
                raise _api_error(412, f"Precondition not met for 'entity.change.deletions[{i}]'",
                                 "conditionNotMet", "FAILED_PRECONDITION")
            del sets[(d["name"], d["type"])]
        for i, a in enumerate(additions):
            if not (a["name"] == zone["dnsName"] or a["name"].endswith("." + zone["dnsName"])):
                raise _api_error(400, f"Invalid value for 'entity.change.additions[{i}].name': "
                                 f"'{a['name']}'", "invalid", "INVALID_ARGUMENT")
            if not a["rrdatas"] and not a.get("routingPolicy"):
                raise _api_error(400, f"The resource record set 'entity.change.additions[{i}]' "
                                 "is invalid because it contains no records.",
                                 "invalid", "INVALID_ARGUMENT")
            if (a["name"], a["type"]) in sets:
                raise _api_error(409, f"The resource 'entity.change.additions[{i}]' named "
                                 f"'{a['name']} ({a['type']})' already exists", "alreadyExists")
            sets[(a["name"], a["type"])] = a
        self.rrsets[(p, z)] = sets
        log = self.changes[(p, z)]
        change = {"kind": "dns#change", "id": str(len(log) + 1),
                  "startTime": self.rfc3339(time.time()), "_at": time.time()}
        if additions:
            change["additions"] = additions
        if deletions:
            change["deletions"] = deletions
        log.append(change)
        return self.shown_change(change)

    def shown_change(self, c):
        out = {k: v for k, v in c.items() if not k.startswith("_")}
        done = time.time() - c["_at"] >= self.change_seconds
        out["status"] = "done" if done else "pending"
        return out

    def change(self, p, z, cid):
        self.zone(p, z)
        for c in self.changes[(p, z)]:
            if c["id"] == cid:
                return self.shown_change(c)
        raise _api_error(404, f"The 'parameters.changeId' resource named '{cid}' does not "
                         "exist.", "notFound")


ROUTES = [
    ("GET", r"^/dns/v1/projects/([^/]+)/managedZones$", "dns_list_zones"),
    ("GET", r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)$", "dns_get_zone"),
    ("GET", r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/rrsets$", "dns_list_rrsets"),
    ("POST", r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes$", "dns_create_change"),
    ("GET", r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes$", "dns_list_changes"),
    ("GET", r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes/([^/]+)$",
     "dns_get_change"),
    ("POST", r"^/emu/dns/zones$", "dns_emu_zone"),
    ("POST", r"^/emu/dns/records$", "dns_emu_record"),
    ("POST", r"^/emu/dns/race$", "dns_emu_race"),
    ("POST", r"^/emu/dns/config$", "dns_emu_config"),
    ("GET", r"^/emu/dns/zones$", "dns_emu_all_zones"),
    ("GET", r"^/emu/dns/rrsets$", "dns_emu_rrsets"),
    ("POST", r"^/emu/dns/health$", "dns_emu_health_put"),
    ("GET", r"^/emu/dns/health$", "dns_emu_health"),
]


def register(world, handler, routes, rfc3339, error):
    """Adds Cloud DNS to gcp_emu's server: its state (reset with the
    world's), its routes and their handlers; `error` is the server's
    ApiError."""
    global _ERROR
    _ERROR = error
    state = Dns(rfc3339)
    reset = world.reset

    def reset_all():
        reset()
        state.reset()

    world.reset = reset_all
    routes.extend(ROUTES)

    def q(query, key):
        return query.get(key, [None])[0]

    def list_zones(self, p, query, body):
        zones = [z for (zp, _), z in sorted(state.zones.items()) if zp == p]
        want = q(query, "dnsName")
        if want:
            zones = [z for z in zones if z["dnsName"] == _fqdn(want)]
        return 200, {"kind": "dns#managedZonesListResponse", "managedZones": zones}

    def get_zone(self, p, z, query, body):
        return 200, state.zone(p, z)

    def list_rrsets(self, p, z, query, body):
        sets = state.list_rrsets(p, z, q(query, "name"), q(query, "type"))
        out = {"kind": "dns#resourceRecordSetsListResponse"}
        if sets:
            out["rrsets"] = sets
        return 200, out

    def create_change(self, p, z, query, body):
        return 200, state.create_change(p, z, body or {})

    def list_changes(self, p, z, query, body):
        state.zone(p, z)
        changes = [state.shown_change(c) for c in state.changes[(p, z)]]
        if q(query, "sortOrder") == "descending":
            changes.reverse()
        if q(query, "maxResults"):
            changes = changes[:int(q(query, "maxResults"))]
        return 200, {"kind": "dns#changesListResponse", "changes": changes}

    def get_change(self, p, z, cid, query, body):
        return 200, state.change(p, z, cid)

    def emu_zone(self, query, body):
        return 200, state.seed_zone(body)

    def emu_record(self, query, body):
        return 200, state.put_rrset(body["project"], body["zone"], body)

    def emu_race(self, query, body):
        state.zone(body["project"], body["zone"])
        state.races[(body["project"], body["zone"])] = body
        return 200, {}

    def emu_config(self, query, body):
        if "changeSeconds" in body:
            state.change_seconds = float(body["changeSeconds"])
        return 200, {"changeSeconds": state.change_seconds}

    def emu_all_zones(self, query, body):
        return 200, {"zones": [dict(z, project=p) for (p, _), z in sorted(state.zones.items())]}

    def emu_rrsets(self, query, body):
        # The data plane's read (dnsplane.py): not an API call, not in /emu/calls.
        return 200, {"rrsets": state.list_rrsets(q(query, "project"), q(query, "zone"), None, None)}

    def emu_health_put(self, query, body):
        address = str(body["address"]).strip().lower().rstrip(".")
        state.health[address] = body["control"]
        return 200, {"address": address, "control": body["control"]}

    def emu_health(self, query, body):
        return 200, {"health": dict(state.health)}

    for name, fn in (("dns_emu_all_zones", emu_all_zones), ("dns_emu_rrsets", emu_rrsets),
                     ("dns_emu_health_put", emu_health_put), ("dns_emu_health", emu_health),
                     ("dns_list_zones", list_zones), ("dns_get_zone", get_zone),
                     ("dns_list_rrsets", list_rrsets), ("dns_create_change", create_change),
                     ("dns_list_changes", list_changes), ("dns_get_change", get_change),
                     ("dns_emu_zone", emu_zone), ("dns_emu_record", emu_record),
                     ("dns_emu_race", emu_race),
                     ("dns_emu_config", emu_config)):
        setattr(handler, name, fn)
    return state
