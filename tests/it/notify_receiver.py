"""Local notification receivers for tests/it/notify.rs: independent of drctl.

A webhook receiver verifies Standard Webhooks signatures with the
`standardwebhooks` package (the reference implementation on PyPI, which also
rejects a timestamp more than five minutes off), deduplicates on
`webhook-id`, and can misbehave on purpose, by path:

  POST /hook/ok         verify, record, 204
  POST /hook/flaky3     500 for the first three attempts of each id, then as ok
  POST /hook/throttle   429 with `Retry-After: 2` for the first attempt of each id
  POST /hook/hang       never answers
  POST /slack           checks a Slack incoming-webhook body (text + Block Kit)
  POST /pagerduty/v2/enqueue, /pagerduty/v2/change/enqueue
                        checks a PagerDuty Events API v2 body
  GET  /log             every request seen, as JSON

Prints `PORT <n>` when listening. The signing secret is WEBHOOK_SECRET;
PagerDuty's routing key is PD_ROUTING_KEY.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
ROUTING_KEY = os.environ.get("PD_ROUTING_KEY", "")
LOCK = threading.Lock()
LOG = []
ATTEMPTS = {}
SEEN = set()

SLACK_BLOCKS = {"header", "section", "context", "divider", "actions"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def slack_problems(body):
    out = []
    if not isinstance(body.get("text"), str) or not body["text"]:
        out.append("text must be a non-empty string (the notification fallback)")
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        out.append("blocks must be a list of 1 to 50 blocks")
        return out
    for b in blocks:
        t = b.get("type")
        if t not in SLACK_BLOCKS:
            out.append(f"unknown block type {t!r}")
        if t == "header" and (b["text"]["type"] != "plain_text" or len(b["text"]["text"]) > 150):
            out.append("a header is plain_text of at most 150 characters")
        if t == "section":
            if "text" not in b and "fields" not in b:
                out.append("a section has text or fields")
            if len(b.get("fields", [])) > 10:
                out.append("a section has at most 10 fields")
            if "text" in b and len(b["text"]["text"]) > 3000:
                out.append("a section's text is at most 3000 characters")
    return out


def pagerduty_problems(path, body):
    out = []
    if body.get("routing_key") != ROUTING_KEY:
        out.append("routing_key is not the configured one")
    if path.endswith("/change/enqueue"):
        p = body.get("payload", {})
        if not p.get("summary") or len(p["summary"]) > 1024:
            out.append("a change event needs payload.summary (at most 1024 characters)")
        return out
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        out.append(f"event_action {action!r}")
    if not body.get("dedup_key"):
        out.append("dedup_key is missing")
    if action == "trigger":
        p = body.get("payload", {})
        if not p.get("summary") or len(p["summary"]) > 1024:
            out.append("payload.summary is required (at most 1024 characters)")
        if not p.get("source"):
            out.append("payload.source is required")
        if p.get("severity") not in PD_SEVERITIES:
            out.append(f"payload.severity {p.get('severity')!r}")
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/log":
            with LOCK:
                data = json.dumps(LOG).encode()
            self.reply(200, data, [("Content-Type", "application/json")])
        else:
            self.reply(404)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        entry = {"path": self.path, "at": time.time()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        entry["body"] = body
        if self.path.startswith("/hook/"):
            return self.hook(raw, body, entry)
        if self.path == "/slack":
            problems = slack_problems(body or {})
        elif self.path.startswith("/pagerduty/"):
            problems = pagerduty_problems(self.path, body or {})
        else:
            problems = ["unknown path"]
        entry["problems"] = problems
        entry["status"] = 400 if problems else (202 if "pagerduty" in self.path else 200)
        with LOCK:
            LOG.append(entry)
        if self.path.startswith("/pagerduty/"):
            answer = {"status": "success" if not problems else "invalid event", "errors": problems}
            self.reply(entry["status"], json.dumps(answer).encode(), [("Content-Type", "application/json")])
        else:
            self.reply(entry["status"], b"ok" if not problems else "; ".join(problems).encode())

    def hook(self, raw, body, entry):
        mode = self.path[len("/hook/"):]
        msg_id = self.headers.get("webhook-id", "")
        entry["id"] = msg_id
        entry["type"] = (body or {}).get("type")
        try:
            Webhook(SECRET).verify(raw, dict(self.headers.items()))
            entry["valid"] = True
        except WebhookVerificationError as e:
            entry["valid"] = False
            entry["status"] = 401
            entry["problems"] = [str(e)]
            with LOCK:
                LOG.append(entry)
            return self.reply(401, str(e).encode())
        with LOCK:
            n = ATTEMPTS.get((mode, msg_id), 0) + 1
            ATTEMPTS[(mode, msg_id)] = n
        if mode == "hang":
            with LOCK:
                LOG.append(dict(entry, status=None))
            time.sleep(3600)
            return
        if mode == "flaky3" and n <= 3:
            status, headers = 500, []
        elif mode == "throttle" and n == 1:
            status, headers = 429, [("Retry-After", "2")]
        else:
            status, headers = 204, []
        entry["status"] = status
        with LOCK:
            if status == 204:
                # Each endpoint deduplicates on its own, as a receiver does.
                entry["duplicate"] = (mode, msg_id) in SEEN
                SEEN.add((mode, msg_id))
            LOG.append(entry)
        self.reply(status, b"", headers)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
