"""Route 53 record-set protections for the emulator world, in front of
LocalStack's Route 53.

AWS added three operations in 2026 (botocore 1.44's model of the Route 53
API; Route 53 Developer Guide, "rrset-protection"): while a protection of a
name and type exists in a hosted zone, Route 53 refuses any
ChangeResourceRecordSets that creates, updates or deletes a record set of
that name and type, whatever its set identifier, with `InvalidChangeBatch`,
for every principal. Neither LocalStack 4.13.1 (whose botocore predates the
operations, so its parser cannot route them) nor moto 5.2.5 has them, so
this process answers Route 53's endpoint: it serves the three operations
itself, holds a ChangeResourceRecordSets that touches a protected name and
type, and passes every other request to LocalStack unchanged.

Modelled from the API reference (the shapes are botocore's; the words of
an error message are this world's, since AWS documents the codes only):

* `CreateResourceRecordSetProtections` (POST
  `/2013-04-01/hostedzone/{Id}/rrsetprotection`): up to 100 entries,
  atomic. Invalid entries (an unknown type, a name outside the zone, a
  comment over 256 characters) are `InvalidResourceRecordSetProtectionBatch`
  (400) listing only the invalid ones, checked before existing ones; every
  entry already protected is `ProtectionAlreadyExists` (409); some are
  `InvalidResourceRecordSetProtectionBatch`. A name with no record set yet
  may be protected.
* `ListResourceRecordSetProtections` (GET, same path): sorted by name and
  type, `name`/`type` start the list there (ignored with `nexttoken`),
  `maxresults` up to 300 (the default), `NextToken` when more remain.
* `DeleteResourceRecordSetProtections` (POST `.../rrsetprotection/delete`):
  an entry with no protection is `InvalidResourceRecordSetProtectionBatch`
  (entry code `ProtectionNotFound`); an entry twice in a request is
  `InvalidInput`.
* `ChangeResourceRecordSets` touching a protected name and type:
  `InvalidChangeBatch` (400), nothing applied.
* `DeleteHostedZone` of a zone with protections: `HostedZoneNotEmpty`
  (400). AWS says such a zone cannot be deleted without naming the code;
  this one is the code of a zone that still has record sets.
* An unknown zone: LocalStack's own `NoSuchHostedZone` answer.

Protections live in memory (like LocalStack's state). `GET
/route53-ext/health` answers 200. Python 3 standard library only; started
by `localstack/up` (DRCTL_ROUTE53_HOST, DRCTL_ROUTE53_PORT, 4567, and the
LocalStack it fronts, DRCTL_ROUTE53_UPSTREAM), checked with boto3 by
`localstack/test_route53_ext.py`.
"""
import http.client
import os
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

HOST = os.environ.get("DRCTL_ROUTE53_HOST", "127.0.0.1")
PORT = int(os.environ.get("DRCTL_ROUTE53_PORT", "4567"))
UPSTREAM = urlparse(os.environ.get("DRCTL_ROUTE53_UPSTREAM", "http://127.0.0.1:4566"))
NS = "https://route53.amazonaws.com/doc/2013-04-01/"
# Route 53's record types (botocore's RRType enum).
TYPES = {"SOA", "A", "TXT", "NS", "CNAME", "MX", "NAPTR", "PTR", "SRV", "SPF", "AAAA",
         "CAA", "DS", "TLSA", "SSHFP", "SVCB", "HTTPS"}
MAX_ENTRIES = 100
MAX_RESULTS = 300
MAX_COMMENT = 256

PROTECTIONS = {}  # zone id -> {(name, type): comment or None}
LOCK = threading.Lock()

ZONE = r"^/2013-04-01/hostedzone/([^/]+)"


class Refused(Exception):
    """An error answer: its status, code, message and extra members."""

    def __init__(self, status, code, message, extra=""):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def xml(self):
        return (f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type>'
                f"<Code>{self.code}</Code><Message>{escape(self.message)}</Message>{self.extra}"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")


def norm(name):
    """A name as Route 53 keeps it: lowercase, with its final dot."""
    name = (name or "").strip().lower()
    return name if name.endswith(".") else name + "."


def local(node):
    """An element's name without its namespace (LocalStack writes none)."""
    return node.tag.rsplit("}", 1)[-1]


def each(node, tag):
    """Every element named `tag` under `node`, in any namespace."""
    return (n for n in node.iter() if local(n) == tag)


def text(node, tag):
    """The text of `node`'s first child named `tag`, or None."""
    found = next((c for c in node if local(c) == tag), None)
    return found.text if found is not None and found.text is not None else None


def entry_errors(failures):
    return "<Errors>" + "".join(
        f"<ProtectionError><RecordName>{escape(n)}</RecordName><RecordType>{escape(t)}</RecordType>"
        f"<Code>{code}</Code><Message>{escape(m)}</Message></ProtectionError>"
        for n, t, code, m in failures) + "</Errors>"


def batch_refused(failures, code="InvalidResourceRecordSetProtectionBatch", status=400):
    what = "already exists for every entry" if code == "ProtectionAlreadyExists" else (
        "could not be processed for some entries")
    return Refused(status, code, f"A resource record set protection {what}: nothing was changed",
                   entry_errors(failures))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "route53-ext"

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)

    def answer(self, status, body, content_type="text/xml"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def upstream(self, method, path, body, headers=None):
        """The request sent on to LocalStack: its status, headers and body."""
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        try:
            # The connection's own Host and length, once (clients spell
            # headers in either case).
            given = headers if headers is not None else self.headers.items()
            sent = {k: v for k, v in given
                    if k.lower() not in ("host", "content-length", "connection",
                                         "transfer-encoding")}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def relay(self, method, body):
        status, headers, data = self.upstream(method, self.path, body)
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server",
                                 "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def zone_name(self, zone):
        """The zone's name, read from LocalStack, or its NoSuchHostedZone."""
        # As the caller signed it (its account), else as Route 53 in the
        # default account: LocalStack routes by the credential scope and
        # checks no signature.
        auth = self.headers.get("Authorization") or (
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/route53/aws4_request, "
            "SignedHeaders=host, Signature=0")
        status, _, data = self.upstream("GET", f"/2013-04-01/hostedzone/{zone}", b"",
                                        [("Authorization", auth)])
        if status == 404:
            raise Refused(404, "NoSuchHostedZone", f"No hosted zone found with ID: {zone}")
        if status != 200:
            raise Refused(502, "ServiceUnavailable",
                          f"the zone could not be read from LocalStack (HTTP {status})")
        return norm(text(next(each(ET.fromstring(data), "HostedZone")), "Name"))

    def handle_any(self, method):
        # Route 53's clients send a length; anything else is refused whole
        # (its bytes would read as the next request on this connection).
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return self.answer(411, Refused(411, "MissingContentLength",
                                            "send the body with a Content-Length").xml())
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return self.answer(400, Refused(400, "InvalidInput", "Content-Length is not a number").xml())
        body = self.rfile.read(n) if n else b""
        path = urlparse(self.path).path
        try:
            if path == "/route53-ext/health":
                return self.answer(200, "ok", "text/plain")
            m = re.match(ZONE + r"/rrsetprotection(/delete)?/?$", path)
            if m and method == "GET" and not m.group(2):
                return self.answer(200, self.list(m.group(1)))
            if m and method == "POST":
                return self.answer(200, self.change(m.group(1), body, delete=bool(m.group(2))))
            m = re.match(ZONE + r"/rrset/?$", path)
            if m and method == "POST":
                self.check_changes(m.group(1), body)
            m = re.match(ZONE + r"/?$", path)
            if m and method == "DELETE":
                with LOCK:
                    if PROTECTIONS.get(m.group(1)):
                        raise Refused(400, "HostedZoneNotEmpty",
                                      "The hosted zone has resource record set protections: "
                                      "delete them first")
        except Refused as e:
            return self.answer(e.status, e.xml())
        except ET.ParseError as e:
            return self.answer(400, Refused(400, "InvalidInput", f"Invalid XML: {e}").xml())
        except (OSError, http.client.HTTPException, StopIteration) as e:
            return self.answer(502, Refused(502, "ServiceUnavailable",
                                            f"LocalStack did not answer: {e!r}").xml())
        try:
            self.relay(method, body)
        except (OSError, http.client.HTTPException) as e:
            self.answer(502, Refused(502, "ServiceUnavailable",
                                     f"LocalStack did not answer: {e!r}").xml())

    def list(self, zone):
        self.zone_name(zone)
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        try:
            most = min(int(q.get("maxresults", MAX_RESULTS)), MAX_RESULTS)
        except ValueError:
            raise Refused(400, "InvalidInput", "MaxResults must be a number")
        if most < 1:
            raise Refused(400, "InvalidInput", "MaxResults must be at least 1")
        if "type" in q and "name" not in q:
            raise Refused(400, "InvalidInput", "StartRecordType needs StartRecordName")
        with LOCK:
            keys = sorted(PROTECTIONS.get(zone, {}).items())
        if "nexttoken" in q:
            start = tuple(q["nexttoken"].split("|", 1))
            if len(start) != 2:
                raise Refused(400, "InvalidPaginationToken", "The NextToken is not valid")
        else:
            start = (norm(q["name"]), q.get("type", "").upper()) if "name" in q else ("", "")
        keys = [(k, c) for k, c in keys if k >= start]
        page, rest = keys[:most], keys[most:]
        items = "".join(
            f"<ResourceRecordSetProtection><RecordName>{escape(n)}</RecordName>"
            f"<RecordType>{t}</RecordType>"
            + (f"<Comment>{escape(c)}</Comment>" if c is not None else "")
            + "</ResourceRecordSetProtection>" for (n, t), c in page)
        token = f"<NextToken>{escape(rest[0][0][0] + '|' + rest[0][0][1])}</NextToken>" if rest else ""
        return (f'<?xml version="1.0"?>\n<ListResourceRecordSetProtectionsResponse xmlns="{NS}">'
                f"<ResourceRecordSetProtections>{items}</ResourceRecordSetProtections>{token}"
                "</ListResourceRecordSetProtectionsResponse>")

    def change(self, zone, body, delete):
        zone_name = self.zone_name(zone)
        root = ET.fromstring(body)
        tag = "ResourceRecordSetProtectionKey" if delete else "ResourceRecordSetProtectionConfig"
        entries = [(norm(text(e, "RecordName")), (text(e, "RecordType") or "").upper(),
                    text(e, "Comment")) for e in each(root, tag)]
        if not entries or len(entries) > MAX_ENTRIES:
            raise Refused(400, "InvalidInput",
                          f"A request names 1 to {MAX_ENTRIES} protections, not {len(entries)}")
        invalid = []
        for name, rtype, comment in entries:
            if rtype not in TYPES:
                invalid.append((name, rtype, "InvalidInput", f"{rtype!r} is not a record type"))
            elif name != zone_name and not name.endswith("." + zone_name):
                invalid.append((name, rtype, "InvalidInput", f"{name} is not in zone {zone_name}"))
            elif comment is not None and len(comment) > MAX_COMMENT:
                invalid.append((name, rtype, "InvalidInput",
                                f"the comment is over {MAX_COMMENT} characters"))
        seen = set()
        for name, rtype, _ in entries:
            if (name, rtype) in seen:
                invalid.append((name, rtype, "InvalidInput", "named twice in the request"))
            seen.add((name, rtype))
        if invalid:
            raise batch_refused(invalid)
        with LOCK:
            held = PROTECTIONS.setdefault(zone, {})
            if delete:
                missing = [(n, t, "ProtectionNotFound", "no protection of this name and type")
                           for n, t, _ in entries if (n, t) not in held]
                if missing:
                    raise batch_refused(missing)
                for n, t, _ in entries:
                    held.pop((n, t), None)
                name = "DeleteResourceRecordSetProtectionsResponse"
            else:
                there = [(n, t, "ProtectionAlreadyExists", "a protection of this name and type exists")
                         for n, t, _ in entries if (n, t) in held]
                if there and len(there) == len(entries):
                    raise batch_refused(there, "ProtectionAlreadyExists", 409)
                if there:
                    raise batch_refused(there)
                for n, t, c in entries:
                    held[(n, t)] = c
                name = "CreateResourceRecordSetProtectionsResponse"
        return f'<?xml version="1.0"?>\n<{name} xmlns="{NS}"/>'

    def check_changes(self, zone, body):
        with LOCK:
            held = dict(PROTECTIONS.get(zone, {}))
        if not held:
            return
        root = ET.fromstring(body)
        hit = []
        for rs in each(root, "ResourceRecordSet"):
            key = (norm(text(rs, "Name")), (text(rs, "Type") or "").upper())
            if key in held and key not in hit:
                hit.append(key)
        if hit:
            named = ", ".join(
                f"[name='{n}', type='{t}'" + (f", comment='{held[(n, t)]}'" if held[(n, t)] else "")
                + "]" for n, t in hit)
            raise Refused(400, "InvalidChangeBatch",
                          f"Resource record sets {named} have a resource record set protection: "
                          "delete it with DeleteResourceRecordSetProtections to change them")

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main():
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    server.daemon_threads = True
    print(f"route53_ext: Route 53 protections on http://{HOST}:{PORT}, "
          f"the rest to {UPSTREAM.geturl()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
