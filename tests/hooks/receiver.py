"""A hook receiver for ctower's tests, written against independent code.

Every POST is recorded as one JSON line in --out:
{"path", "headers", "body", "verified"}. Requests to /webhook are checked
with the PyPI package `standardwebhooks` (the Standard Webhooks reference
verifier) using --secret; a request that fails verification is recorded
with verified=false and answered 401. /slack answers 200 "ok" (as Slack
does), /pagerduty 202 with PagerDuty's reply; anything else 404.

Prints "listening PORT" once it accepts connections. --port reuses a port
(to come back on the same address after being down).
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    verifier = Webhook(args.secret)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = None
            status, reply = 404, b""
            if self.path == "/webhook":
                try:
                    verifier.verify(body, headers)
                    verified = True
                    status = 204
                except WebhookVerificationError as e:
                    verified = False
                    status, reply = 401, str(e).encode()
            elif self.path == "/slack":
                status, reply = 200, b"ok"
            elif self.path == "/pagerduty":
                event = json.loads(body)
                status = 202
                reply = json.dumps(
                    {
                        "status": "success",
                        "message": "Event processed",
                        "dedup_key": event.get("dedup_key"),
                    }
                ).encode()
            record = {
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8"),
                "verified": verified,
            }
            with lock:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
