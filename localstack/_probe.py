#!/usr/bin/env python3
"""Tiny stdlib-only helper for localstack/up: port and readiness probes.

  _probe.py port-open HOST PORT
      exit 0 when something accepts TCP connections on HOST:PORT, else 1.
  _probe.py ready KIND URL
      one readiness probe; exit 0 when ready, 1 when not (reason on stderr).
  _probe.py wait KIND URL TIMEOUT_S [PID]
      probe until ready; exit 1 on timeout, 2 when PID dies first.

KIND is one of: localstack (URL/_localstack/health lists SERVICES as available),
moto (URL/moto-api/ answers 200), gcs (URL/storage/v1/b answers 200),
dns (a DNS query over UDP to URL's host:port gets an answer, any rcode).
"""
import json
import os
import socket
import sys
import time
import urllib.request


def port_open(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def dns_answers(url):
    """One UDP query (root SOA) to URL's host:port; any well-formed reply counts."""
    host, _, port = url.split("://")[-1].rstrip("/").rpartition(":")
    query = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x06\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        try:
            s.sendto(query, (host, int(port)))
            data = s.recv(512)
        except OSError as exc:
            return False, f"no DNS answer: {exc}"
    return (True, "ok") if data[:2] == b"\x12\x34" else (False, "not a DNS answer")


def ready(kind, url):
    url = url.rstrip("/")
    if kind == "dns":
        return dns_answers(url)
    path = {
        "localstack": "/_localstack/health",
        "moto": "/moto-api/",
        "gcs": "/storage/v1/b",
        "gcp": "/emu/health",
        "route53": "/route53-ext/health",
    }[kind]
    try:
        with urllib.request.urlopen(url + path, timeout=3) as resp:
            body = resp.read()
            if resp.status != 200:
                return False, f"HTTP {resp.status}"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return False, str(exc)
    if kind == "localstack":
        try:
            services = json.loads(body).get("services", {})
        except ValueError:
            return False, "health is not JSON"
        wanted = [s for s in os.environ.get("SERVICES", "route53,s3,cloudwatch,sts").split(",") if s]
        missing = [s for s in wanted if services.get(s) not in ("available", "running")]
        if missing:
            return False, "services not available: " + ",".join(missing)
    return True, "ok"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def main(argv):
    cmd = argv[1]
    if cmd == "port-open":
        return 0 if port_open(argv[2], argv[3]) else 1
    if cmd == "ready":
        ok, why = ready(argv[2], argv[3])
        if not ok:
            print(why, file=sys.stderr)
        return 0 if ok else 1
    if cmd == "wait":
        kind, url, timeout = argv[2], argv[3], float(argv[4])
        pid = int(argv[5]) if len(argv) > 5 and argv[5] else None
        deadline = time.monotonic() + timeout
        why = "not tried"
        while time.monotonic() < deadline:
            ok, why = ready(kind, url)
            if ok:
                return 0
            if pid is not None and not pid_alive(pid):
                print(f"process {pid} exited before {url} was ready ({why})", file=sys.stderr)
                return 2
            time.sleep(0.2)
        print(f"timed out after {timeout:.0f}s waiting for {url} ({why})", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
