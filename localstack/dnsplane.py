"""Route 53's data plane for the emulator world: health checks and DNS answers.

LocalStack (community, 4.13) stores hosted zones, record sets and health
checks, but nothing evaluates the health checks and nothing answers DNS
queries from those zones: its own DNS server (localstack/dns/server.py) only
knows the hosts LocalStack registers for itself and forwards the rest
upstream; the Route 53 provider never feeds it records, failover or health.
drctl's data-plane switch (issue 17) moves traffic by flipping the *controls*
that Route 53 health checks read, and verifies the move by asking DNS. This
process is the piece of Route 53 that does that in the emulator world:

* it reads zones, record sets and health checks from LocalStack's Route 53
  API (boto3): the zone list and a zone's record sets are re-read when a query
  finds them older than DRCTL_DNS_REFRESH (1 s), the health check list every
  DRCTL_DNS_REFRESH in the checker loop;
* it evaluates every health check every DRCTL_DNS_CHECK_INTERVAL (1 s):
  HTTP(S)[_STR_MATCH] and TCP against their endpoint, CLOUDWATCH_METRIC from
  the alarm's state in LocalStack's CloudWatch, CALCULATED from its children;
  FailureThreshold, Inverted and Disabled as Route 53 documents them;
* it answers DNS over UDP and TCP on DRCTL_DNS_HOST:DRCTL_DNS_PORT
  (127.0.0.1:8053), authoritatively, with Route 53's routing semantics
  (simple, weighted, failover, multivalue, alias with EvaluateTargetHealth,
  "if no record is healthy, all are healthy");
* it logs one line per health status change (and per new health check) on
  stdout, which `up` sends to the world dir's dnsplane.log.

* with DRCTL_DNS_GCP (the GCP emulator, gcp_emu.py), it answers for Cloud
  DNS's managed zones too (read from the emulator's `/emu/dns/zones` and
  `/emu/dns/rrsets`, never its `/dns/v1` API, refreshed as Route 53's): plain
  record sets as they are; a `routingPolicy.primaryBackup` answers its
  primary targets when one is healthy, else the first backup item with a
  healthy target. A target's health is what its serving endpoint says: the
  emulator's `/emu/dns/health` maps a serving address to the control object
  it answers its health path from, read from fake-gcs-server
  (DRCTL_DNS_GCS) at every answer: `state=serve` is healthy, anything else
  (drain, missing, unreadable, no control mapped) unhealthy (fails closed).

localstack/README.md ("Route 53's data plane") says what it does not emulate.
Started by `localstack/up`, stopped by `localstack/down`.
"""
import http.client
import json
import os
import random
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from dnslib import QTYPE, RCODE, RR
from dnslib.server import DNSHandler, DNSLogger, DNSServer

ROUTE53 = os.environ.get("DRCTL_DNS_ROUTE53", "http://127.0.0.1:4566")
CLOUDWATCH = os.environ.get("DRCTL_DNS_CLOUDWATCH", ROUTE53)
HOST = os.environ.get("DRCTL_DNS_HOST", "127.0.0.1")
PORT = int(os.environ.get("DRCTL_DNS_PORT", "8053"))
CHECK_INTERVAL = float(os.environ.get("DRCTL_DNS_CHECK_INTERVAL", "1"))
REFRESH = float(os.environ.get("DRCTL_DNS_REFRESH", "1"))
HTTP_TIMEOUT = float(os.environ.get("DRCTL_DNS_HTTP_TIMEOUT", "2"))
# Route 53 searches this much of the body for SearchString.
STR_MATCH_BYTES = 5120
# LocalStack drops AlarmIdentifier and InsufficientDataHealthStatus of a
# CLOUDWATCH_METRIC health check (moto does not model them): these tags on the
# health check stand in for them (see the README).
TAG_ALARM_REGION = "drctl:alarm-region"
TAG_ALARM_NAME = "drctl:alarm-name"
TAG_INSUFFICIENT = "drctl:insufficient-data"
# Cloud DNS's zones (the GCP emulator) and the control objects of its
# health-checked targets (fake-gcs-server); empty: Route 53's zones only.
GCP = os.environ.get("DRCTL_DNS_GCP", "").rstrip("/")
GCS = os.environ.get("DRCTL_DNS_GCS", "").rstrip("/")
ENDPOINT_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")
MAX_DEPTH = 8
CFG = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=4)
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def log(msg):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {msg}", flush=True)


def client(service, region, url):
    return boto3.client(service, region_name=region, endpoint_url=url, config=CFG, **CREDS)


def present(value):
    """LocalStack renders a missing IPAddress as the string "None"."""
    return value not in (None, "", "None")


# ---------------------------------------------------------------- health checks

@dataclass
class Health:
    """What the checkers measured for one health check, and what it reports."""
    measured: bool = True   # Route 53: a new health check is healthy until measured
    streak: int = 0         # consecutive results that disagree with `measured`
    why: str = "new health check (healthy until measured, as Route 53)"
    reported: bool = True   # after Disabled and Inverted


def probe_endpoint(cfg):
    """One check of an HTTP(S)[_STR_MATCH] or TCP health check: (healthy, why)."""
    kind = cfg.get("Type", "")
    tls = kind.startswith("HTTPS")
    fqdn = cfg.get("FullyQualifiedDomainName")
    ip = cfg.get("IPAddress")
    target = ip if present(ip) else fqdn
    if not present(target):
        return False, "no IPAddress nor FullyQualifiedDomainName"
    port = int(cfg.get("Port") or (443 if tls else 80))
    if kind == "TCP":
        try:
            socket.create_connection((target, port), timeout=HTTP_TIMEOUT).close()
            return True, f"TCP connect {target}:{port} ok"
        except OSError as e:
            return False, f"TCP connect {target}:{port}: {e}"
    return probe_http(cfg, tls, target, port, fqdn)


def host_header(fqdn, target, port, tls):
    """The Host header Route 53 sends: FullyQualifiedDomainName (else the IP),
    with `:Port` unless the port is the scheme's default."""
    name = fqdn if present(fqdn) else target
    return name if port == (443 if tls else 80) else f"{name}:{port}"


def probe_http(cfg, tls, target, port, fqdn):
    path = cfg.get("ResourcePath") or "/"
    if not path.startswith("/"):
        path = "/" + path
    where = f"{'https' if tls else 'http'}://{target}:{port}{path}"
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False          # Route 53 does not validate certificates
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(target, port, timeout=HTTP_TIMEOUT, context=ctx)
    else:
        conn = http.client.HTTPConnection(target, port, timeout=HTTP_TIMEOUT)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host_header(fqdn, target, port, tls))
        conn.putheader("User-Agent", "Amazon-Route53-Health-Check-Service (drctl dnsplane)")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read(STR_MATCH_BYTES)
    except (OSError, http.client.HTTPException) as e:
        return False, f"GET {where}: {type(e).__name__}: {e}"
    finally:
        conn.close()
    if not 200 <= resp.status < 400:
        return False, f"GET {where}: HTTP {resp.status}"
    wanted = cfg.get("SearchString")
    if cfg.get("Type", "").endswith("_STR_MATCH") and wanted:
        if wanted.encode() not in body:
            return False, f"GET {where}: HTTP {resp.status}, {wanted!r} not in the first {STR_MATCH_BYTES} bytes"
        return True, f"GET {where}: HTTP {resp.status}, {wanted!r} found"
    return True, f"GET {where}: HTTP {resp.status}"


def alarm_of(cfg, tags):
    """(region, name, insufficient-data rule) of a CLOUDWATCH_METRIC check."""
    ident = cfg.get("AlarmIdentifier") or {}
    region = ident.get("Region") or tags.get(TAG_ALARM_REGION)
    name = ident.get("Name") or tags.get(TAG_ALARM_NAME)
    rule = cfg.get("InsufficientDataHealthStatus") or tags.get(TAG_INSUFFICIENT) or "LastKnownStatus"
    return region, name, rule


def alarm_verdict(state, rule, region, name):
    """(healthy or None for "keep the last status", why) for an alarm state."""
    what = f"alarm {region}/{name} is {state}"
    if state == "OK":
        return True, what
    if state == "ALARM":
        return False, what
    if rule == "Healthy":
        return True, f"{what}, InsufficientDataHealthStatus=Healthy"
    if rule == "Unhealthy":
        return False, f"{what}, InsufficientDataHealthStatus=Unhealthy"
    return None, f"{what}, InsufficientDataHealthStatus=LastKnownStatus"


class Checker:
    """Every health check LocalStack knows, evaluated on a short interval."""

    def __init__(self):
        self.route53 = client("route53", "us-east-1", ROUTE53)
        self.lock = threading.Lock()
        self.configs = {}      # id -> HealthCheckConfig
        self.tags = {}         # id -> {key: value} (CLOUDWATCH_METRIC checks only)
        self.health = {}       # id -> Health
        self.in_flight = set()
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="check")
        self.last_error = None

    # -- read
    def refresh(self):
        configs, marker = {}, None
        while True:
            page = self.route53.list_health_checks(**({"Marker": marker} if marker else {}))
            for hc in page.get("HealthChecks", []):
                configs[hc["Id"]] = hc.get("HealthCheckConfig", {})
            if not page.get("IsTruncated"):
                break
            marker = page.get("NextMarker")
        cw = [i for i, c in configs.items() if c.get("Type") == "CLOUDWATCH_METRIC"]
        tags = {}
        for i in range(0, len(cw), 10):
            sets = self.route53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=cw[i:i + 10])
            for s in sets.get("ResourceTagSets", []):
                tags[s["ResourceId"]] = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        with self.lock:
            for hc_id in configs.keys() - self.configs.keys():
                cfg = configs[hc_id]
                h = self.health.setdefault(hc_id, Health())
                h.reported = self.reported(cfg, h)
                state = "healthy" if h.reported else "unhealthy (Inverted)"
                log(f"health check {hc_id}: new, {cfg.get('Type')} {describe(cfg, tags.get(hc_id, {}))}: {state} until measured")
            for hc_id in self.configs.keys() - configs.keys():
                self.health.pop(hc_id, None)
            self.configs, self.tags = configs, tags

    # -- decide
    def record(self, hc_id, healthy, why, threshold):
        """Applies one result: the measured status flips after `threshold`
        consecutive results that disagree with it. Logs a reported change."""
        with self.lock:
            cfg, h = self.configs.get(hc_id), self.health.get(hc_id)
            if cfg is None or h is None:
                return
            if healthy is None or healthy == h.measured:
                h.streak = 0
            else:
                h.streak += 1
                if h.streak >= threshold:
                    h.measured, h.streak = healthy, 0
            h.why = why
            self.report(hc_id, cfg, h, f"{threshold} consecutive results" if threshold > 1 else "")

    @staticmethod
    def reported(cfg, h):
        """Disabled: always healthy; then Inverted flips it (Route 53's rules)."""
        healthy = True if cfg.get("Disabled") else h.measured
        return not healthy if cfg.get("Inverted") else healthy

    def report(self, hc_id, cfg, h, note):
        reported = self.reported(cfg, h)
        if reported != h.reported:
            flags = ", ".join(x for x in (note, "Inverted" if cfg.get("Inverted") else "",
                                          "Disabled" if cfg.get("Disabled") else "") if x)
            old, new = ("healthy", "unhealthy") if h.reported else ("unhealthy", "healthy")
            log(f"health check {hc_id}: {old} -> {new}: {h.why}" + (f" ({flags})" if flags else ""))
            h.reported = reported

    def healthy(self, hc_id):
        """Reported status; an unknown health check counts as healthy."""
        with self.lock:
            h = self.health.get(hc_id)
            return True if h is None else h.reported

    # -- act
    def tick(self):
        with self.lock:
            configs, tags = dict(self.configs), dict(self.tags)
        alarms = {}
        for hc_id, cfg in configs.items():
            kind = cfg.get("Type")
            if kind in ENDPOINT_TYPES:
                self.submit(hc_id, self.run_endpoint, hc_id, cfg)
            elif kind == "CLOUDWATCH_METRIC":
                region, name, rule = alarm_of(cfg, tags.get(hc_id, {}))
                if region and name:
                    alarms.setdefault(region, []).append((hc_id, name, rule))
                else:
                    self.record(hc_id, None, "no AlarmIdentifier (tag it drctl:alarm-region/-name)", 1)
        for region, checks in alarms.items():
            self.submit(("alarms", region), self.run_alarms, region, checks)
        self.calculate(configs)

    def submit(self, key, fn, *args):
        with self.lock:
            if key in self.in_flight:
                return
            self.in_flight.add(key)

        def done(_):
            with self.lock:
                self.in_flight.discard(key)
        self.pool.submit(fn, *args).add_done_callback(done)

    def run_endpoint(self, hc_id, cfg):
        healthy, why = probe_endpoint(cfg)
        self.record(hc_id, healthy, why, int(cfg.get("FailureThreshold") or 3))

    def run_alarms(self, region, checks):
        try:
            cw = client("cloudwatch", region, CLOUDWATCH)
            names = sorted({name for _, name, _ in checks})
            states = {}
            for i in range(0, len(names), 100):
                for a in cw.describe_alarms(AlarmNames=names[i:i + 100]).get("MetricAlarms", []):
                    states[a["AlarmName"]] = a.get("StateValue")
        except Exception as e:  # noqa: BLE001 - CloudWatch unreachable: no data
            for hc_id, name, rule in checks:
                healthy, _ = alarm_verdict("INSUFFICIENT_DATA", rule, region, name)
                self.record(hc_id, healthy, f"CloudWatch {region} unreachable ({type(e).__name__}: {e})", 1)
            return
        for hc_id, name, rule in checks:
            state = states.get(name, "INSUFFICIENT_DATA")
            healthy, why = alarm_verdict(state, rule, region, name)
            if name not in states:
                why += " (no such alarm)"
            self.record(hc_id, healthy, why, 1)

    def calculate(self, configs):
        """CALCULATED checks: healthy when at least HealthThreshold children
        report healthy (children first: a calculated child is computed first)."""
        done = set()

        def visit(hc_id, depth):
            cfg = configs.get(hc_id)
            if hc_id in done or cfg is None or cfg.get("Type") != "CALCULATED" or depth > MAX_DEPTH:
                return
            children = cfg.get("ChildHealthChecks") or []
            for child in children:
                visit(child, depth + 1)
            up = sum(1 for c in children if c in configs and self.healthy(c))
            need = int(cfg.get("HealthThreshold") or 0)
            self.record(hc_id, up >= need, f"{up} of {len(children)} children healthy, HealthThreshold {need}", 1)
            done.add(hc_id)
        for hc_id in configs:
            visit(hc_id, 0)

    def run(self):
        next_refresh = 0.0
        while True:
            start = time.monotonic()
            if start >= next_refresh:
                try:
                    self.refresh()
                    if self.last_error:
                        log("health checks: LocalStack answers again")
                    self.last_error = None
                except Exception as e:  # noqa: BLE001 - LocalStack restarts; keep the last list
                    msg = f"{type(e).__name__}: {e}"
                    if msg != self.last_error:
                        log(f"health checks: cannot list them ({msg}); keeping the last list")
                    self.last_error = msg
                next_refresh = start + REFRESH
            self.tick()
            time.sleep(max(0.0, CHECK_INTERVAL - (time.monotonic() - start)))


def describe(cfg, tags):
    kind = cfg.get("Type", "")
    if kind in ENDPOINT_TYPES:
        tls = kind.startswith("HTTPS")
        ip, fqdn = cfg.get("IPAddress"), cfg.get("FullyQualifiedDomainName")
        target = ip if present(ip) else fqdn
        port = int(cfg.get("Port") or (443 if tls else 80))
        host = f" Host {host_header(fqdn, target, port, tls)}" if present(fqdn) and present(ip) else ""
        match = f" SearchString {cfg.get('SearchString')!r}" if kind.endswith("_STR_MATCH") else ""
        return f"{target}:{port}{cfg.get('ResourcePath') or ''}{host}{match} FailureThreshold {cfg.get('FailureThreshold')}"
    if kind == "CLOUDWATCH_METRIC":
        region, name, rule = alarm_of(cfg, tags)
        return f"alarm {region}/{name} InsufficientData={rule}"
    if kind == "CALCULATED":
        return f"children {cfg.get('ChildHealthChecks')} HealthThreshold {cfg.get('HealthThreshold')}"
    return ""


# ---------------------------------------------------------------- zones

OCTAL = re.compile(r"\\(\d{3})")
MANGLED = re.compile(r"^\{'Value':\s*'(.*)'\}$")


def norm(name):
    """Lower case, trailing dot, Route 53's \\ddd escapes decoded (\\052 is *)."""
    name = OCTAL.sub(lambda m: chr(int(m.group(1), 8)), name).lower()
    return name if name.endswith(".") else name + "."


def value_of(value):
    """LocalStack renders the SOA value as "{'Value': '...'}"."""
    m = MANGLED.match(value)
    return m.group(1) if m else value


@dataclass
class Zone:
    """One hosted zone's record sets, indexed by (name, type)."""
    zone_id: str
    name: str
    fetched: float = 0.0
    sets: dict = field(default_factory=dict)    # (name, type) -> [record set]
    names: set = field(default_factory=set)     # every owner name and its ancestors in the zone
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, route53):
        sets, kwargs = {}, {"HostedZoneId": self.zone_id}
        while True:
            page = route53.list_resource_record_sets(**kwargs)
            for rs in page.get("ResourceRecordSets", []):
                sets.setdefault((norm(rs["Name"]), rs["Type"]), []).append(rs)
            if not page.get("IsTruncated"):
                break
            kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
            if page.get("NextRecordIdentifier"):
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
        names = set()
        for owner, _ in sets:
            while owner.endswith(self.name) and owner not in names:
                names.add(owner)
                owner = owner.split(".", 1)[1] if owner != self.name else ""
        self.sets, self.names, self.fetched = sets, names, time.monotonic()


def http_json(url):
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as resp:
        return json.loads(resp.read() or b"{}")


def gcp_sets(rs):
    """A Cloud DNS record set as Route 53-shaped record sets: a plain one as
    is; a primaryBackup as a PRIMARY (its primary targets) and a SECONDARY
    per backup item, in order, each with the addresses whose health it
    follows (`GcpTargets`), so that `choose` answers as Cloud DNS does."""
    name, rtype, ttl = norm(rs["name"]), rs["type"], int(rs.get("ttl") or 300)

    def one(values, **extra):
        return dict({"Name": name, "Type": rtype, "TTL": ttl,
                     "ResourceRecords": [{"Value": v} for v in values]}, **extra)

    pb = (rs.get("routingPolicy") or {}).get("primaryBackup")
    if not pb:
        return [one(rs.get("rrdatas") or [])]
    primary = list((pb.get("primaryTargets") or {}).get("externalEndpoints") or [])
    out = [one(primary, Failover="PRIMARY", SetIdentifier="primary", GcpTargets=primary)]
    for i, item in enumerate((pb.get("backupGeoTargets") or {}).get("items") or []):
        checked = list((item.get("healthCheckedTargets") or {}).get("externalEndpoints") or [])
        plain = list(item.get("rrdatas") or [])
        values = plain + [v for v in checked if v not in plain]
        out.append(one(values, Failover="SECONDARY", SetIdentifier=f"backup-{i}",
                       GcpTargets=checked or plain))
    return out


@dataclass
class GcpZone(Zone):
    """One Cloud DNS managed zone of the GCP emulator."""
    project: str = ""

    def load(self, _route53):
        page = http_json(f"{GCP}/emu/dns/rrsets?" + urllib.parse.urlencode(
            {"project": self.project, "zone": self.zone_id}))
        sets = {}
        for rs in page.get("rrsets") or []:
            for r53 in gcp_sets(rs):
                sets.setdefault((r53["Name"], r53["Type"]), []).append(r53)
        names = set()
        for owner, _ in sets:
            while owner.endswith(self.name) and owner not in names:
                names.add(owner)
                owner = owner.split(".", 1)[1] if owner != self.name else ""
        self.sets, self.names, self.fetched = sets, names, time.monotonic()


# Cloud SQL's write endpoints (`<id>.<id>.global.sql-psa.goog.`, Google's
# documented form): Cloud SQL keeps them in a DNS zone of its own and points
# each at its replication cluster's primary.
PSA_ZONE = "global.sql-psa.goog."
# The TTL the world answers them with (Google does not document one).
PSA_TTL = 5


@dataclass
class SqlPsaZone(Zone):
    """Cloud SQL's write endpoints, each an A record of its cluster's
    current primary's address, read from the GCP emulator's
    `/emu/sql/write-endpoints` (an endpoint whose cluster has no primary,
    between a failover's steps, is answered NXDOMAIN)."""

    def load(self, _route53):
        page = http_json(f"{GCP}/emu/sql/write-endpoints")
        sets = {}
        for ep in page.get("endpoints") or []:
            if ep.get("ip"):
                name = norm(ep["name"])
                sets[(name, "A")] = [{"Name": name, "Type": "A", "TTL": PSA_TTL,
                                      "ResourceRecords": [{"Value": ep["ip"]}]}]
        self.sets, self.names, self.fetched = sets, {n for n, _ in sets} | {self.name}, time.monotonic()


def control_healthy(url):
    """Whether the control object at gs://bucket/key says serve: read from
    fake-gcs-server; missing or unreadable fails closed."""
    if not GCS or not url or not url.startswith("gs://"):
        return False, f"no readable control ({url!r})"
    bucket, _, key = url[len("gs://"):].partition("/")
    where = (f"{GCS}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/"
             f"{urllib.parse.quote(key, safe='')}?alt=media")
    try:
        with urllib.request.urlopen(where, timeout=HTTP_TIMEOUT) as resp:
            body = resp.read(STR_MATCH_BYTES)
    except Exception as e:  # noqa: BLE001 - unreadable: fails closed
        return False, f"{url}: {type(e).__name__}: {e}"
    return b"state=serve" in body, f"{url}: {'serve' if b'state=serve' in body else 'not serve'}"


def gcp_target_healthy(address):
    """A serving address's health: its control object, per the emulator's map."""
    try:
        health = http_json(f"{GCP}/emu/dns/health").get("health") or {}
    except Exception:  # noqa: BLE001 - no map: fails closed
        return False
    return control_healthy(health.get(address.strip().lower().rstrip(".")))[0]


class Zones:
    """The hosted zones, re-read from LocalStack when older than REFRESH.
    When LocalStack does not answer, the last data read keeps being served
    (as Route 53's data plane outlives its control plane)."""

    def __init__(self):
        self.route53 = client("route53", "us-east-1", ROUTE53)
        self.lock = threading.Lock()
        self.by_name = {}      # zone name -> Zone (the first listed, if LocalStack holds duplicates)
        self.listed = 0.0
        self.warned = set()
        self.last_error = None

    def stale(self, what, e, have):
        """Logs a failed read once per distinct error; re-raises without data."""
        msg = f"{type(e).__name__}: {e}"
        if msg != self.last_error:
            log(f"{what}: cannot read from LocalStack ({msg})" + ("; serving the last data read" if have else ""))
            self.last_error = msg
        if not have:
            raise e

    def fresh_list(self):
        with self.lock:
            if time.monotonic() - self.listed < REFRESH:
                return self.by_name
            try:
                zones = self.list_zones()
            except Exception as e:  # noqa: BLE001 - see stale()
                self.stale("zones", e, self.listed > 0)
                self.listed = time.monotonic()
                return self.by_name
            by_name = {}
            for z in zones:
                name, zone_id = norm(z["Name"]), z["Id"].split("/")[-1]
                if name in by_name:
                    if name not in self.warned:
                        log(f"zone {name}: LocalStack holds several; answering from {by_name[name].zone_id}")
                        self.warned.add(name)
                    continue
                old = self.by_name.get(name)
                by_name[name] = old if old and old.zone_id == zone_id else Zone(zone_id, name)
            if GCP:
                self.add_gcp(by_name)
            self.by_name, self.listed = by_name, time.monotonic()
            return by_name

    def add_gcp(self, by_name):
        """Cloud DNS's managed zones, beside Route 53's (a name both hold
        is answered from Route 53's)."""
        try:
            zones = http_json(f"{GCP}/emu/dns/zones").get("zones") or []
        except Exception as e:  # noqa: BLE001 - see stale()
            self.stale("cloud dns zones", e, True)
            zones = [z for z in self.by_name.values() if isinstance(z, GcpZone)]
            for z in zones:
                by_name.setdefault(z.name, z)
            return
        for z in zones:
            name, key = norm(z["dnsName"]), z["name"]
            if name in by_name:
                continue
            old = self.by_name.get(name)
            same = isinstance(old, GcpZone) and old.zone_id == key and old.project == z["project"]
            by_name[name] = old if same else GcpZone(key, name, project=z["project"])
        old = self.by_name.get(PSA_ZONE)
        by_name.setdefault(PSA_ZONE, old if isinstance(old, SqlPsaZone) else SqlPsaZone("sql-psa", PSA_ZONE))

    def list_zones(self):
        zones, marker = [], None
        while True:
            page = self.route53.list_hosted_zones(**({"Marker": marker} if marker else {}))
            zones += page.get("HostedZones", [])
            if not page.get("IsTruncated"):
                return zones
            marker = page.get("NextMarker")

    def zone_for(self, qname):
        """The zone with the longest name that `qname` is in, fresh; or None."""
        by_name = self.fresh_list()
        labels = qname.split(".")
        for i in range(len(labels)):
            zone = by_name.get(".".join(labels[i:]) or ".")
            if zone is None:
                continue
            with zone.lock:
                if time.monotonic() - zone.fetched >= REFRESH:
                    try:
                        zone.load(self.route53)
                    except Exception as e:  # noqa: BLE001 - see stale()
                        self.stale(f"zone {zone.name}", e, zone.fetched > 0)
                        zone.fetched = time.monotonic()
            return zone
        return None


# ---------------------------------------------------------------- answers

def wildcard_owner(zone, name):
    """The wildcard name (`*.parent.`) that covers `name`, which does not
    exist in `zone`: the closest existing ancestor's `*` child."""
    if name in zone.names or not name.endswith(zone.name):
        return None
    parent = name
    while parent != zone.name:
        parent = parent.split(".", 1)[1]
        if parent in zone.names:
            star = "*." + parent
            return star if star in zone.names else None
    return None


@dataclass
class Answer:
    rrs: list            # dnslib RRs
    healthy: bool        # whether the record chosen was healthy (False: "all unhealthy" fallback)


class Router:
    """Route 53's choice among the record sets of one name and type."""

    def __init__(self, zones, checker):
        self.zones, self.checker = zones, checker

    def resolve(self, zone, name, rtype, owner, memo, depth=0):
        """Answer for (name, rtype) in `zone` with owner name `owner`, or None
        when there is no such record set (a wildcard counts)."""
        key = (name, rtype)
        if key in memo:
            return memo[key]
        memo[key] = None    # a loop of aliases resolves to nothing
        sets = zone.sets.get(key) or self.wildcard(zone, name, rtype)
        if not sets or depth > MAX_DEPTH:
            return None
        healths = [self.record_health(zone, rs, rtype, memo, depth) for rs in sets]
        chosen, healthy = choose(sets, healths)
        rrs = []
        for rs in chosen:
            rrs += self.rrs_of(zone, rs, rtype, owner, memo, depth)
        memo[key] = Answer(rrs, healthy)
        return memo[key]

    def wildcard(self, zone, name, rtype):
        owner = wildcard_owner(zone, name)
        return zone.sets.get((owner, rtype)) if owner else None

    def alias_target(self, zone, alias, rtype, memo, depth):
        target = norm(alias.get("DNSName", ""))
        tzone = zone if target.endswith(zone.name) else self.zones.zone_for(target)
        if tzone is None:
            return None, target
        return self.resolve(tzone, target, rtype, target, memo, depth + 1), target

    def record_health(self, zone, rs, rtype, memo, depth):
        healthy = True
        if rs.get("HealthCheckId"):
            healthy = self.checker.healthy(rs["HealthCheckId"])
        if "GcpTargets" in rs:  # a Cloud DNS primaryBackup item: any healthy target
            healthy = any(gcp_target_healthy(t) for t in rs["GcpTargets"])
        alias = rs.get("AliasTarget")
        if alias and alias.get("EvaluateTargetHealth"):
            answer, _ = self.alias_target(zone, alias, rtype, memo, depth)
            healthy = healthy and answer is not None and answer.healthy and bool(answer.rrs)
        return healthy

    def rrs_of(self, zone, rs, rtype, owner, memo, depth):
        alias = rs.get("AliasTarget")
        if alias:
            answer, target = self.alias_target(zone, alias, rtype, memo, depth)
            if answer is None:
                return []
            out = []
            for rr in answer.rrs:
                rname = owner if norm(str(rr.rname)) == target else rr.rname
                out.append(RR(rname, rr.rtype, rr.rclass, rr.ttl, rr.rdata))
            return out
        ttl = int(rs.get("TTL", 300))
        out = []
        for v in rs.get("ResourceRecords", []):
            try:
                out += RR.fromZone(f"{owner} {ttl} IN {rtype} {value_of(v['Value'])}")
            except Exception as e:  # noqa: BLE001 - a value dnslib cannot render
                log(f"record {owner} {rtype} {v.get('Value')!r}: cannot render ({e}); skipped")
        return out


def choose(sets, healths):
    """The record sets Route 53 answers with, and whether they are healthy.

    Route 53 ("How Amazon Route 53 chooses records when health checking is
    configured"): a record without a health check is healthy; if no record of
    the group is healthy, all are considered healthy and the routing policy
    picks as usual; weight-0 records count only when every non-zero one is
    unhealthy; failover answers PRIMARY if healthy, else SECONDARY if healthy.
    """
    pairs = list(zip(sets, healths))
    any_ok = any(healths)
    if any("Failover" in rs for rs in sets):
        order = sorted(pairs, key=lambda p: p[0].get("Failover") != "PRIMARY")
        for rs, ok in order:
            if ok:
                return [rs], True
        return [order[0][0]], False
    if any("Weight" in rs for rs in sets):
        return pick_weighted(pairs), any_ok
    if any(rs.get("MultiValueAnswer") for rs in sets):
        ok = [rs for rs, h in pairs if h] or list(sets)
        return ok[:8], any_ok
    # simple (one set), or latency/geolocation (no client location here: first healthy)
    ok = [rs for rs, h in pairs if h]
    return ([ok[0]] if ok else [sets[0]]), any_ok


def pick_weighted(pairs):
    """One record by weight among the healthy non-zero ones; else one of the
    healthy zero-weight ones (uniformly); if none is healthy, all count as
    healthy (so one of the non-zero ones by weight, if there are any)."""
    healthy = [rs for rs, ok in pairs if ok]
    for candidates in (healthy, [rs for rs, _ in pairs]):
        if not candidates:
            continue
        nonzero = [rs for rs in candidates if int(rs.get("Weight", 0)) > 0]
        if nonzero:
            return random.choices(nonzero, weights=[int(rs["Weight"]) for rs in nonzero])
        return [random.choice(candidates)]
    return []


class Resolver:
    """dnslib resolver: authoritative answers from the zones."""

    def __init__(self, zones, router):
        self.zones, self.router = zones, router

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.ra = 0
        try:
            self.answer(request, reply)
        except Exception as e:  # noqa: BLE001 - never leave a query unanswered
            log(f"query {request.q.qname} {QTYPE.get(request.q.qtype)}: SERVFAIL ({type(e).__name__}: {e})")
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        return reply

    def answer(self, request, reply):
        qname, qtype = str(request.q.qname), QTYPE.get(request.q.qtype)
        zone = self.zones.zone_for(norm(qname))
        if zone is None:
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
            return
        reply.header.aa = 1
        owner, memo = qname, {}
        for _ in range(MAX_DEPTH):
            name = norm(owner)
            found = self.lookup(zone, name, qtype, owner, memo)
            if found is not None:
                for rr in found:
                    reply.add_answer(rr)
                return
            cname = self.router.resolve(zone, name, "CNAME", owner, memo) if qtype != "CNAME" else None
            if cname is None or not cname.rrs:
                self.negative(zone, name, reply)
                return
            for rr in cname.rrs:
                reply.add_answer(rr)
            owner = str(cname.rrs[-1].rdata.label)
            if not norm(owner).endswith(zone.name) or self.zones.zone_for(norm(owner)) is not zone:
                return      # the CNAME leaves the zone: the client chases it, as with Route 53
        # a CNAME chain longer than MAX_DEPTH: answer what we have

    def lookup(self, zone, name, qtype, owner, memo):
        if qtype == "ANY":
            types = sorted({t for (n, t) in zone.sets if n == name})
            rrs = [rr for t in types for rr in (self.router.resolve(zone, name, t, owner, memo) or Answer([], True)).rrs]
            return rrs or None
        answer = self.router.resolve(zone, name, qtype, owner, memo)
        return None if answer is None or not answer.rrs else answer.rrs

    def negative(self, zone, name, reply):
        """NODATA (the name exists) or NXDOMAIN, with the zone's SOA."""
        if name not in zone.names and wildcard_owner(zone, name) is None:
            reply.header.rcode = RCODE.NXDOMAIN
        soa = zone.sets.get((zone.name, "SOA"))
        if soa and soa[0].get("ResourceRecords"):
            value = value_of(soa[0]["ResourceRecords"][0]["Value"])
            try:
                minimum = int(value.split()[-1])
            except (ValueError, IndexError):
                minimum = 300
            ttl = min(int(soa[0].get("TTL", 900)), minimum)
            for rr in RR.fromZone(f"{zone.name} {ttl} IN SOA {value}"):
                reply.add_auth(rr)


# ---------------------------------------------------------------- serving

class Handler(DNSHandler):
    udplen = 512            # larger UDP answers are truncated (TC): the client retries over TCP


class ExclusiveUDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    """dnslib's UDP server sets SO_REUSEADDR, which on Linux lets a second
    process bind the same UDP port: this one does not, so a taken port fails."""
    allow_reuse_address = False
    daemon_threads = True


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    checker = Checker()
    zones = Zones()
    resolver = Resolver(zones, Router(zones, checker))
    quiet = DNSLogger(log="error", prefix=False, logf=lambda m: log(f"dns: {m}"))
    try:
        servers = [
            DNSServer(resolver, address=HOST, port=PORT, logger=quiet, handler=Handler, server=ExclusiveUDPServer),
            DNSServer(resolver, address=HOST, port=PORT, tcp=True, logger=quiet, handler=Handler, server=TCPServer),
        ]
    except OSError as e:
        log(f"dnsplane: cannot listen on {HOST}:{PORT}: {e}")
        sys.exit(1)
    for s in servers:
        s.start_thread()
    log(f"dnsplane: DNS on {HOST}:{PORT} (UDP, TCP); Route 53 {ROUTE53}, CloudWatch {CLOUDWATCH}; "
        f"Cloud DNS {GCP or 'off'}, GCS {GCS or 'off'}; "
        f"health checks every {CHECK_INTERVAL:g} s (HTTP timeout {HTTP_TIMEOUT:g} s), "
        f"zones and health check list re-read after {REFRESH:g} s")
    checker.run()


if __name__ == "__main__":
    main()
