#!/usr/bin/env python3
"""A minimal neo-backfill webhook executor (Python 3 standard library only).

Checks the signature of every request, runs the work once per execution id (the
Idempotency-Key), and answers {"status": "succeeded"} or {"status": "failed", "error": ...}.

The signature (X-Neo-Signature: sha256=<hex>) is HMAC-SHA256 with the workflow's secret over
"{X-Neo-Timestamp}.{direction}.{execution_id}.{body}", where direction is the X-Neo-Event header
("execution" or "cancel") and execution_id the one in the body. An asynchronous executor that
answered 202 signs its completion the same way with direction "complete" and the execution id of
the URL it posts to (POST /public-api/executions/{execution_id}/complete).

    NEO_WEBHOOK_SECRET=whsec_at_least_16_chars python3 examples/webhook_receiver.py 9000
"""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["NEO_WEBHOOK_SECRET"].encode()
MAX_SKEW = 300  # seconds
done = {}  # execution id -> answer (use a database in production)


def sign(ts: int, direction: str, execution_id: str, body: bytes) -> str:
    message = f"{ts}.{direction}.{execution_id}.".encode() + body
    return "sha256=" + hmac.new(SECRET, message, hashlib.sha256).hexdigest()


def signature_ok(timestamp: str, direction: str, body: bytes, header: str) -> bool:
    try:
        ts = int(timestamp)
        execution_id = json.loads(body)["execution_id"]
    except (ValueError, KeyError, TypeError):
        return False
    if abs(time.time() - ts) > MAX_SKEW or direction not in ("execution", "cancel"):
        return False
    return hmac.compare_digest(sign(ts, direction, execution_id, body), header)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        direction = self.headers.get("X-Neo-Event", "")
        if not signature_ok(self.headers.get("X-Neo-Timestamp", ""), direction, body, self.headers.get("X-Neo-Signature", "")):
            return self.answer(401, {"error": "bad signature"})
        event = json.loads(body)
        if event.get("event") == "cancel":
            return self.answer(200, {"status": "cancelled"})
        key = self.headers["Idempotency-Key"]  # == event["execution_id"], stable across retries
        if key not in done:
            done[key] = run(event)
        return self.answer(200, done[key])

    def answer(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def run(event) -> dict:
    entity = event["entity"]
    # ... do the work on entity["type"] entity["id"] here ...
    if entity["id"].endswith("13"):
        return {"status": "failed", "error": f"ticket {entity['id']} is locked"}
    return {"status": "succeeded"}


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()
